package cli

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// configBroker is a fake Kafka broker for the alter-config paths Strand
// cannot show: a broker that serves IncrementalAlterConfigs, and one that
// advertises it but answers UNSUPPORTED_VERSION. It serves ApiVersions,
// Metadata, DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for
// one topic whose overrides it keeps.
type configBroker struct {
	t           *testing.T
	ln          net.Listener
	unsupported bool // answer IncrementalAlterConfigs with UNSUPPORTED_VERSION

	mu        sync.Mutex
	overrides map[string]string
	apis      []string // the config APIs called, in order
}

const fakeTopic = "fake-topic"

func startConfigBroker(t *testing.T, unsupported bool, overrides map[string]string) *configBroker {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &configBroker{t: t, ln: ln, unsupported: unsupported, overrides: overrides}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); b.serve(c) }()
		}
	}()
	return b
}

func (b *configBroker) serve(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		var size int32
		if binary.Read(r, binary.BigEndian, &size) != nil {
			return
		}
		frame := make([]byte, size)
		if _, err := io.ReadFull(r, frame); err != nil {
			return
		}
		key, version := int16(binary.BigEndian.Uint16(frame)), int16(binary.BigEndian.Uint16(frame[2:]))
		corr := frame[4:8]
		rest := frame[8:]
		clientLen := int16(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
		if clientLen > 0 {
			rest = rest[clientLen:]
		}
		req := kmsg.RequestForKey(key)
		if req == nil {
			return
		}
		req.SetVersion(version)
		if req.IsFlexible() {
			rest = skipTags(rest)
		}
		if err := req.ReadFrom(rest); err != nil {
			b.t.Errorf("fake broker: reading %s v%d: %v", kmsg.NameForKey(key), version, err)
			return
		}
		resp := b.handle(req)
		if resp == nil {
			return
		}
		out := append([]byte{0, 0, 0, 0}, corr...)
		if req.IsFlexible() && key != kmsg.ApiVersions.Int16() {
			out = append(out, 0) // empty response header tags
		}
		out = resp.AppendTo(out)
		binary.BigEndian.PutUint32(out, uint32(len(out)-4))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// skipTags skips a tagged-field section (uvarint count, then tag, size, data).
func skipTags(b []byte) []byte {
	n, l := binary.Uvarint(b)
	b = b[l:]
	for range n {
		_, l = binary.Uvarint(b)
		b = b[l:]
		size, l := binary.Uvarint(b)
		b = b[l+int(size):]
	}
	return b
}

func (b *configBroker) handle(req kmsg.Request) kmsg.Response {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch req := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		for _, k := range []kmsg.Key{kmsg.ApiVersions, kmsg.Metadata, kmsg.DescribeConfigs, kmsg.AlterConfigs, kmsg.IncrementalAlterConfigs} {
			v := kmsg.NewApiVersionsResponseApiKey()
			v.ApiKey, v.MinVersion, v.MaxVersion = k.Int16(), 0, kmsg.RequestForKey(k.Int16()).MaxVersion()
			resp.ApiKeys = append(resp.ApiKeys, v)
		}
		return resp
	case *kmsg.MetadataRequest:
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		host, port, _ := net.SplitHostPort(b.ln.Addr().String())
		p, _ := strconv.Atoi(port)
		br := kmsg.NewMetadataResponseBroker()
		br.NodeID, br.Host, br.Port = 0, host, int32(p)
		resp.Brokers = append(resp.Brokers, br)
		resp.ControllerID = 0
		return resp
	case *kmsg.DescribeConfigsRequest:
		b.apis = append(b.apis, "DescribeConfigs")
		resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
		for _, r := range req.Resources {
			rr := kmsg.NewDescribeConfigsResponseResource()
			rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
			for k, v := range b.overrides {
				c := kmsg.NewDescribeConfigsResponseResourceConfig()
				c.Name, c.Value, c.Source = k, kmsg.StringPtr(v), kmsg.ConfigSourceDynamicTopicConfig
				rr.Configs = append(rr.Configs, c)
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name, c.Value, c.Source, c.IsDefault = "cleanup.policy", kmsg.StringPtr("delete"), kmsg.ConfigSourceDefaultConfig, true
			rr.Configs = append(rr.Configs, c)
			resp.Resources = append(resp.Resources, rr)
		}
		return resp
	case *kmsg.AlterConfigsRequest:
		b.apis = append(b.apis, "AlterConfigs")
		resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
		for _, r := range req.Resources {
			b.overrides = map[string]string{}
			for _, c := range r.Configs {
				b.overrides[c.Name] = *c.Value
			}
			rr := kmsg.NewAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
			resp.Resources = append(resp.Resources, rr)
		}
		return resp
	case *kmsg.IncrementalAlterConfigsRequest:
		b.apis = append(b.apis, "IncrementalAlterConfigs")
		resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
		for _, r := range req.Resources {
			rr := kmsg.NewIncrementalAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
			if b.unsupported {
				rr.ErrorCode = kerr.UnsupportedVersion.Code
			} else {
				for _, c := range r.Configs {
					if c.Op == kmsg.IncrementalAlterConfigOpDelete {
						delete(b.overrides, c.Name)
					} else {
						b.overrides[c.Name] = *c.Value
					}
				}
			}
			resp.Resources = append(resp.Resources, rr)
		}
		return resp
	}
	return nil
}

func (b *configBroker) state() (apis []string, overrides map[string]string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o := map[string]string{}
	for k, v := range b.overrides {
		o[k] = v
	}
	return append([]string(nil), b.apis...), o
}

func TestAlterConfigIncremental(t *testing.T) {
	b := startConfigBroker(t, false, map[string]string{"retention.ms": "1000", "segment.bytes": "4096"})
	r := cliEnv(t, Env{}, nil, "topic", "alter-config", fakeTopic, "--set", "retention.bytes=5", "--delete", "retention.ms",
		"--json", "--brokers", b.ln.Addr().String())
	if r.code != 0 || !strings.Contains(r.stdout, `"api": "IncrementalAlterConfigs"`) {
		t.Fatalf("alter-config: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	apis, o := b.state()
	if strings.Join(apis, ",") != "IncrementalAlterConfigs" || len(o) != 2 || o["retention.bytes"] != "5" || o["segment.bytes"] != "4096" {
		t.Fatalf("calls %v, overrides %v", apis, o)
	}
}

// A broker that advertises IncrementalAlterConfigs but answers
// UNSUPPORTED_VERSION gets AlterConfigs with the current overrides merged.
func TestAlterConfigUnsupportedVersion(t *testing.T) {
	b := startConfigBroker(t, true, map[string]string{"retention.ms": "1000", "segment.bytes": "4096"})
	r := cliEnv(t, Env{}, nil, "topic", "alter-config", fakeTopic, "--set", "retention.bytes=5", "--delete", "retention.ms",
		"--brokers", b.ln.Addr().String())
	if r.code != 0 || !strings.Contains(r.stdout, "(AlterConfigs)") {
		t.Fatalf("alter-config: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	apis, o := b.state()
	if strings.Join(apis, ",") != "IncrementalAlterConfigs,DescribeConfigs,AlterConfigs" ||
		len(o) != 2 || o["retention.bytes"] != "5" || o["segment.bytes"] != "4096" {
		t.Fatalf("calls %v, overrides %v", apis, o)
	}
}
