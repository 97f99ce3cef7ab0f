package metaraft

import (
	"os"
	"path/filepath"
	"strings"
)

// The role file records whether this replica must start non-voting.
// Dragonboat takes the role from the start call, not from its own records,
// and a non-voting replica started as a voter could campaign. So Join
// writes "nonvoting" before starting, and the Host rewrites it to "voter"
// once it sees its own promotion. A crash between the promotion and the
// rewrite is harmless: a voter started as non-voting becomes a voter
// again when it replays the promotion (or a snapshot holding it).
type role int

const (
	roleNone role = iota // bootstrapped member, or never started
	roleNonVoting
	roleVoter
)

const roleFile = "role"

func (h *Host) role() role {
	b, err := os.ReadFile(filepath.Join(h.cfg.Dir, roleFile))
	if err != nil {
		return roleNone
	}
	switch strings.TrimSpace(string(b)) {
	case "nonvoting":
		return roleNonVoting
	case "voter":
		return roleVoter
	}
	return roleNone
}

// setRole writes the role file atomically and durably.
func (h *Host) setRole(r role) error {
	s := "voter\n"
	if r == roleNonVoting {
		s = "nonvoting\n"
	}
	tmp := filepath.Join(h.cfg.Dir, roleFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(h.cfg.Dir, roleFile)); err != nil {
		return err
	}
	d, err := os.Open(h.cfg.Dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
