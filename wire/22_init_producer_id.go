package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// handleInitProducerID hands out producer ids (idempotent producers). From
// v3 a producer may send its id and epoch to have the epoch bumped
// (KIP-360); before, they are not on the wire.
func (c *conn) handleInitProducerID(s *slot, req *kmsg.InitProducerIDRequest) {
	r := InitProducerIDRequest{TransactionalID: req.TransactionalID, ProducerID: -1, ProducerEpoch: -1}
	if req.Version >= 3 {
		r.ProducerID, r.ProducerEpoch = req.ProducerID, req.ProducerEpoch
	}
	c.gb.InitProducerID(r, func(res InitProducerIDResult) {
		defer c.recoverPanic()
		resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = ErrorCode(res.Err), res.ProducerID, res.ProducerEpoch
		c.complete(s, resp)
	})
}
