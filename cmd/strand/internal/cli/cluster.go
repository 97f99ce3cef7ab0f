package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func clusterCmd(g *globals) *cobra.Command {
	return parentCmd("cluster", "Show the cluster", &cobra.Command{
		Use:   "info",
		Short: "Show the brokers, the controller, the cluster id and the topic count",
		Args:  exactArgs(0, "no arguments"),
		RunE: runAdmin(g, func(cmd *cobra.Command, _ []string, adm *kadm.Client) error {
			md, err := adm.Metadata(cmd.Context())
			if err != nil {
				return err
			}
			type broker struct {
				ID   int32  `json:"id"`
				Host string `json:"host"`
				Port int32  `json:"port"`
				Rack string `json:"rack,omitempty"`
			}
			out := struct {
				ClusterID  string   `json:"cluster_id"`
				Controller int32    `json:"controller"`
				Topics     int      `json:"topics"`
				Brokers    []broker `json:"brokers"`
			}{ClusterID: md.Cluster, Controller: md.Controller, Brokers: []broker{}}
			for _, t := range md.Topics {
				if !t.IsInternal {
					out.Topics++
				}
			}
			for _, b := range md.Brokers {
				br := broker{ID: b.NodeID, Host: b.Host, Port: b.Port}
				if b.Rack != nil {
					br.Rack = *b.Rack
				}
				out.Brokers = append(out.Brokers, br)
			}
			if g.json {
				return writeJSON(g.env.Stdout, out)
			}
			fmt.Fprintf(g.env.Stdout, "CLUSTER ID  %s\nCONTROLLER  %d\nTOPICS      %d\n\n", out.ClusterID, out.Controller, out.Topics)
			tb := newTable(g.env.Stdout, "BROKER", "HOST", "PORT", "RACK")
			for _, b := range out.Brokers {
				rack := b.Rack
				if rack == "" {
					rack = "-"
				}
				tb.row(b.ID, b.Host, b.Port, rack)
			}
			tb.flush()
			return nil
		}),
	})
}
