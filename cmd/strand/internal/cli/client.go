package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// unreachableError is a broker that could not be reached (exit 3).
type unreachableError struct {
	brokers string
	err     error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach a broker at %s: is `strand serve` running? set --brokers or STRAND_BROKERS (%v)", e.brokers, e.err)
}

func (e *unreachableError) Unwrap() error { return e.err }

// connect returns a client for the --brokers seeds after checking that one
// of them answers, so a down broker fails within --connect-timeout instead
// of after kgo's retries. The caller closes the client.
func (g *globals) connect(ctx context.Context, opts ...kgo.Opt) (*kgo.Client, error) {
	seeds := splitBrokers(g.brokers)
	if len(seeds) == 0 {
		return nil, usageErrorf("--brokers is empty")
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.DialTimeout(g.connectTimeout),
		kgo.ClientID("strand-cli"),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	pctx, cancel := context.WithTimeout(ctx, g.connectTimeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		return nil, &exitError{ExitUnreachable, &unreachableError{g.brokers, err}}
	}
	return cl, nil
}

// admin returns a kadm client over a connected kgo client.
func (g *globals) adminClient(ctx context.Context) (*kadm.Client, error) {
	cl, err := g.connect(ctx)
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

func splitBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// classify turns an error from a command body into an exit error: a
// network failure is an unreachable broker (the broker went away after
// the ping), anything else a failed operation.
func classify(err error) error {
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) {
		return &exitError{ExitUnreachable, fmt.Errorf("lost the broker: %w; is `strand serve` still running?", err)}
	}
	return &exitError{ExitFailed, err}
}

// kafkaErr describes a Kafka error code for an operator, with what to do
// about the common ones.
func kafkaErr(err error, topic string) error {
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return fmt.Errorf("topic %q does not exist (`strand topic list` shows the topics; `strand topic create %s` makes it)", topic, topic)
	case errors.Is(err, kerr.TopicAlreadyExists):
		return fmt.Errorf("topic %q already exists (`strand topic describe %s` shows it)", topic, topic)
	case errors.Is(err, kerr.InvalidConfig), errors.Is(err, kerr.InvalidRequest):
		return fmt.Errorf("%s: %w (`strand topic describe %s` lists the config keys)", topic, err, topic)
	}
	return fmt.Errorf("%s: %w", topic, err)
}
