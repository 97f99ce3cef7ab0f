package metaraft

import (
	"fmt"
	"io"

	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/strand-io/strand/cluster/metadata"
)

// stateMachine adapts metadata.State to Dragonboat. It is a concurrent
// state machine rather than the plain IStateMachine for two reasons that
// both come from views being immutable: Update gets the committed entries
// in batches, so the Host publishes one View per batch rather than per
// entry; and PrepareSnapshot only has to take the current View, after
// which SaveSnapshot encodes it while Update carries on.
//
// Dragonboat calls Update, PrepareSnapshot and RecoverFromSnapshot one at
// a time; Lookup and SaveSnapshot may run concurrently with them, so they
// touch only immutable Views.
type stateMachine struct {
	st      *metadata.State
	publish func(*metadata.View)
	current func() *metadata.View
}

var _ sm.IConcurrentStateMachine = (*stateMachine)(nil)

// Update applies committed entries in log order. A rejected command is a
// normal result. A command of a kind or version this code does not know
// is an error, which stops the replica (Dragonboat panics): applying
// around it would let this broker's metadata silently differ from the
// newer brokers that wrote it. Upgrade the broker and it replays the log.
func (m *stateMachine) Update(es []sm.Entry) ([]sm.Entry, error) {
	for i := range es {
		r, err := m.st.ApplyBytes(es[i].Cmd)
		if err != nil {
			return nil, fmt.Errorf("metaraft: entry %d: %w", es[i].Index, err)
		}
		es[i].Result = sm.Result{Value: uint64(r.Code), Data: metadata.EncodeResult(r)}
	}
	m.publish(m.st.View())
	return es, nil
}

// Lookup serves SyncRead: after the read index is applied locally, the
// current View is the linearizable answer.
func (m *stateMachine) Lookup(any) (any, error) { return m.current(), nil }

func (m *stateMachine) PrepareSnapshot() (any, error) { return m.st.View(), nil }

func (m *stateMachine) SaveSnapshot(ctx any, w io.Writer, _ sm.ISnapshotFileCollection, _ <-chan struct{}) error {
	v, ok := ctx.(*metadata.View)
	if !ok {
		return fmt.Errorf("metaraft: snapshot context %T", ctx)
	}
	return v.Save(w)
}

func (m *stateMachine) RecoverFromSnapshot(r io.Reader, _ []sm.SnapshotFile, _ <-chan struct{}) error {
	if err := m.st.Recover(r); err != nil {
		return err
	}
	m.publish(m.st.View())
	return nil
}

func (m *stateMachine) Close() error { return nil }
