package metaraft

import (
	"errors"
	"os"
	"path/filepath"
)

// joinedFile marks a replica that joined a running group (Join) rather
// than being one of its initial voters.
//
// Dragonboat takes a replica's non-voting flag from the start call, and on
// restart it replays the membership changes after its last snapshot. A
// joined replica's replay starts with "add replica N as non-voting", which
// Dragonboat refuses (panics) unless the replica runs as non-voting; a later
// promotion in the same replay, or a snapshot taken after it, turns the
// replica into a voter again. So a joined replica always restarts as
// non-voting, promoted or not, and a bootstrapped one never does. This
// file is how Restart tells them apart before Dragonboat's records can be
// read.
const joinedFile = "joined"

func (h *Host) joined() bool {
	_, err := os.Stat(filepath.Join(h.cfg.Dir, joinedFile))
	return err == nil
}

// markJoined creates the marker durably: the file, then its directory.
func (h *Host) markJoined() error {
	f, err := os.OpenFile(filepath.Join(h.cfg.Dir, joinedFile), os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	d, err := os.Open(h.cfg.Dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
