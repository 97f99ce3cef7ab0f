package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// Exit codes; see the package doc.
const (
	ExitOK          = 0
	ExitFailed      = 1
	ExitUsage       = 2
	ExitUnreachable = 3
)

// Defaults for the global flags.
const (
	DefaultBrokers        = "127.0.0.1:9092"
	DefaultAdmin          = "http://127.0.0.1:9644"
	DefaultConnectTimeout = 5 * time.Second
)

// Env is what a run of the CLI reads and writes. main fills it from the
// process; tests fill it with buffers.
type Env struct {
	// Context ends a command early (main cancels it on an interrupt); nil
	// is context.Background().
	Context        context.Context
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads the environment (STRAND_BROKERS); nil reads nothing.
	Getenv func(string) string
	// StderrTerminal says whether Stderr is a terminal, which turns on
	// produce's progress bar.
	StderrTerminal bool
}

// Passthrough is a command whose arguments go, unparsed, to code outside
// this package (`strand serve`, `strand perf`), so their own flag sets
// stay the single definition of their flags.
type Passthrough struct {
	Name, Short string
	Run         func(args []string) int
}

// exitError carries the exit code an error should end the process with.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf is a bad-flags or bad-arguments error (exit 2).
func usageErrorf(format string, a ...any) error {
	return &exitError{ExitUsage, fmt.Errorf(format, a...)}
}

// failedf is an operation that ran and failed (exit 1).
func failedf(format string, a ...any) error {
	return &exitError{ExitFailed, fmt.Errorf(format, a...)}
}

// globals are the flags every Kafka command takes.
type globals struct {
	env            Env
	brokers        string
	admin          string
	json           bool
	connectTimeout time.Duration
}

// Main runs the CLI with args (without the program name) and returns the
// process exit code.
func Main(args []string, env Env, pass ...Passthrough) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	root, _ := newRoot(env, pass)
	root.SetArgs(args)
	ctx := env.Context
	if ctx == nil {
		ctx = context.Background()
	}
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	code := ExitUsage // cobra's own errors: unknown command, flags, arguments
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if errors.Is(err, errSilent) {
		return code
	}
	fmt.Fprintf(env.Stderr, "strand: %v\n", err)
	if code == ExitUsage && cmd != nil {
		fmt.Fprintf(env.Stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

func newRoot(env Env, pass []Passthrough) (*cobra.Command, *globals) {
	g := &globals{env: env}
	root := &cobra.Command{
		Use:   "strand",
		Short: "Strand: a Kafka-compatible broker, and the tools to operate it",
		Long: `strand serve runs a broker; the other commands are Kafka clients for
operating one: topics, producing and consuming, consumer groups, the cluster.

Exit codes: 0 ok, 1 the operation failed, 2 usage error, 3 broker unreachable.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		// A bare `strand` is a usage error, as before cobra: scripts that
		// call it wrongly must not see success.
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(env.Stderr)
			cmd.Usage()
			return &exitError{ExitUsage, errSilent}
		},
	}
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{ExitUsage, err}
	})

	brokers := DefaultBrokers
	if v := env.Getenv("STRAND_BROKERS"); v != "" {
		brokers = v
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.brokers, "brokers", brokers, "comma-separated broker addresses (env STRAND_BROKERS)")
	pf.StringVar(&g.admin, "admin", DefaultAdmin, "Strand admin API address (for commands that need it)")
	pf.BoolVar(&g.json, "json", false, "print JSON for scripts instead of tables")
	pf.DurationVar(&g.connectTimeout, "connect-timeout", DefaultConnectTimeout, "give up on an unreachable broker after this long")

	for _, p := range pass {
		run := p.Run
		root.AddCommand(&cobra.Command{
			Use:                p.Name,
			Short:              p.Short,
			DisableFlagParsing: true,
			RunE: func(_ *cobra.Command, args []string) error {
				if code := run(args); code != 0 {
					// The command printed its own error.
					return &exitError{code, errSilent}
				}
				return nil
			},
		})
	}
	root.AddCommand(topicCmd(g), produceCmd(g), consumeCmd(g), groupCmd(g), clusterCmd(g), brokerCmd(g), partitionCmd(g), placementCmd(g))
	return root, g
}

// errSilent marks an exit whose message was already printed.
var errSilent = errors.New("")

// run adapts a command body to cobra: errors it returns without an exit
// code are classified (unreachable broker or failed operation).
// runAdmin is run for a command that needs an admin client: it connects
// (failing fast with exit 3 when no broker answers) and closes the client
// when f returns.
func runAdmin(g *globals, f func(cmd *cobra.Command, args []string, adm *kadm.Client) error) func(*cobra.Command, []string) error {
	return run(func(cmd *cobra.Command, args []string) error {
		adm, err := g.adminClient(cmd.Context())
		if err != nil {
			return err
		}
		defer adm.Close()
		return f(cmd, args, adm)
	})
}

func run(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := f(cmd, args)
		if err == nil {
			return nil
		}
		var ee *exitError
		if errors.As(err, &ee) {
			return err
		}
		return classify(err)
	}
}

// args checks positional arguments, as a usage error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("expected %s, got %d argument(s)", what, len(args))
		}
		return nil
	}
}

func minArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < n {
			return usageErrorf("expected %s", what)
		}
		return nil
	}
}

// parseKV splits k=v flag values.
func parseKV(flag string, vals []string) ([][2]string, error) {
	out := make([][2]string, 0, len(vals))
	for _, v := range vals {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return nil, usageErrorf("--%s %q: want KEY=VALUE", flag, v)
		}
		out = append(out, [2]string{k, val})
	}
	return out, nil
}

// parentCmd is a command that only groups subcommands. An unknown or
// missing subcommand is a usage error (cobra would print help and exit 0,
// which a script would take for success).
func parentCmd(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return usageErrorf("%s needs a subcommand: %s", cmd.CommandPath(), subNames(cmd))
		},
	}
	c.AddCommand(subs...)
	return c
}

func subNames(cmd *cobra.Command) string {
	var names []string
	for _, c := range cmd.Commands() {
		names = append(names, c.Name())
	}
	return strings.Join(names, ", ")
}
