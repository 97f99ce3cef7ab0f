package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// handleApiVersions answers with the advertised ranges. A request above our
// maximum never gets here: handleFrame answers it with the KIP-511 v0
// downgrade before parsing the body.
func (c *conn) handleApiVersions(s *slot, req *kmsg.ApiVersionsRequest) {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = apiVersionsKeys(c.gb != nil, c.cb != nil)
	c.complete(s, resp)
}
