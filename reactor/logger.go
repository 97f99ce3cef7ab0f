package reactor

import (
	"context"
	"fmt"
	"log/slog"
)

// gnetLogger routes gnet's log lines (it wants a printf-style logger) to
// slog, tagged component=gnet. gnet's Fatalf is only used on BSD; here it
// logs at Error and panics, which is what "fatal" means inside a library.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) logf(level slog.Level, format string, args []any) {
	if !g.l.Enabled(context.Background(), level) {
		return
	}
	g.l.Log(context.Background(), level, fmt.Sprintf(format, args...), "component", "gnet")
}

func (g gnetLogger) Debugf(format string, args ...any) { g.logf(slog.LevelDebug, format, args) }
func (g gnetLogger) Infof(format string, args ...any)  { g.logf(slog.LevelInfo, format, args) }
func (g gnetLogger) Warnf(format string, args ...any)  { g.logf(slog.LevelWarn, format, args) }
func (g gnetLogger) Errorf(format string, args ...any) { g.logf(slog.LevelError, format, args) }

func (g gnetLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	g.l.Error(msg, "component", "gnet")
	panic("gnet: " + msg)
}
