package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// LivenessSoftware is the ClientSoftwareName of the cluster controller's
// liveness probes (ApiVersions v3+), whose ClientSoftwareVersion the
// backend reads (Backend.LivenessProbed).
const LivenessSoftware = "strand-liveness"

// handleApiVersions answers with the advertised ranges. A request above our
// maximum never gets here: handleFrame answers it with the KIP-511 v0
// downgrade before parsing the body.
func (c *conn) handleApiVersions(s *slot, req *kmsg.ApiVersionsRequest) {
	if req.ClientSoftwareName == LivenessSoftware {
		c.be.LivenessProbed(req.ClientSoftwareVersion)
	}
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = apiVersionsKeys(c.gb != nil, c.cb != nil)
	c.complete(s, resp)
}
