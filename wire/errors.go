package wire

import (
	"bytes"
	"errors"
	"reflect"

	"github.com/strand-io/strand/cluster/topicconfig"
	"github.com/strand-io/strand/shard"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka error codes used by this package. They are plain numbers so they can
// be constants; TestErrorCodesMatchKerr checks each against kerr.
const (
	errNone                     int16 = 0
	errOffsetOutOfRange         int16 = 1
	errCorruptMessage           int16 = 2
	errUnknownTopicOrPartition  int16 = 3
	errLeaderNotAvailable       int16 = 5
	errInvalidTopic             int16 = 17
	errInvalidRequiredAcks      int16 = 21
	errUnsupportedVersion       int16 = 35
	errTopicAlreadyExists       int16 = 36
	errInvalidPartitions        int16 = 37
	errInvalidReplicationFactor int16 = 38
	errInvalidReplicaAssignment int16 = 39
	errInvalidConfig            int16 = 40
	errInvalidRequest           int16 = 42
	errFetchSessionIDNotFound   int16 = 70
	errInvalidRecord            int16 = 87
	errUnknownTopicID           int16 = 100
)

// ErrorCode is the one mapping from the broker's domain errors to Kafka
// error codes: storage (shard) returns Go errors and knows no Kafka numbers,
// as Redpanda maps storage errors only in its Kafka handlers. An error that
// already is a Kafka error (kerr, as the replication protocol answers with)
// keeps its code. Anything unknown is a storage failure: the client retries
// or surfaces it, and the broker's log line names the cause.
func ErrorCode(err error) int16 {
	var ce *shard.CorruptionError
	var ke *kerr.Error
	switch {
	case err == nil:
		return errNone
	case errors.As(err, &ke):
		return ke.Code
	case errors.Is(err, shard.ErrCorruptBatch), errors.Is(err, shard.ErrShortBatch),
		errors.Is(err, shard.ErrCorruptRecords), errors.As(err, &ce):
		return kerr.CorruptMessage.Code
	case errors.Is(err, shard.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, shard.ErrBatchTooLarge), errors.Is(err, shard.ErrRecordsTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, shard.ErrInvalidBatch), errors.Is(err, shard.ErrKeylessCompacted):
		return kerr.InvalidRecord.Code
	case errors.Is(err, shard.ErrTimestampOutOfRange):
		return kerr.InvalidTimestamp.Code
	case errors.Is(err, shard.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, shard.ErrProducerFenced):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, shard.ErrBacklogFull):
		return kerr.RequestTimedOut.Code // retriable: the client backs off
	case errors.Is(err, topicconfig.ErrInvalidRequest), errors.Is(err, topicconfig.ErrReadOnly):
		return kerr.InvalidRequest.Code
	case errors.Is(err, topicconfig.ErrUnknownKey), errors.Is(err, topicconfig.ErrInvalidValue),
		errors.Is(err, topicconfig.ErrUnsupported):
		return kerr.InvalidConfig.Code
	default: // ErrNoSpace (the log stays up), ErrLogFailed, ErrClosed, I/O errors
		return kerr.KafkaStorageError.Code
	}
}

// errName is the Kafka name of code, for logs and error messages.
func errName(code int16) string {
	if code == errNone {
		return "NONE"
	}
	if err := kerr.ErrorForCode(code); err != nil {
		if ke, ok := err.(*kerr.Error); ok {
			return ke.Message
		}
		return err.Error()
	}
	return "UNKNOWN"
}

// errorResponse builds the response to req with code in every error field,
// echoing the topics and partitions the request named. It answers a request
// whose version is outside the advertised range but that kmsg can still
// parse, so the client sees UNSUPPORTED_VERSION instead of a dropped
// connection. It returns nil for keys this package does not serve.
func errorResponse(req kmsg.Request, code int16) kmsg.Response {
	resp := req.ResponseKind()
	switch q := req.(type) {
	case *kmsg.ApiVersionsRequest:
		r := resp.(*kmsg.ApiVersionsResponse)
		r.ErrorCode = code
	case *kmsg.ProduceRequest:
		r := resp.(*kmsg.ProduceResponse)
		for _, t := range q.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition, rp.ErrorCode, rp.BaseOffset = p.Partition, code, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
	case *kmsg.FetchRequest:
		r := resp.(*kmsg.FetchResponse)
		r.ErrorCode = code
		for _, t := range q.Topics {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition, rp.ErrorCode, rp.HighWatermark = p.Partition, code, -1
				rp.RecordBatches = []byte{}
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
	case *kmsg.ListOffsetsRequest:
		r := resp.(*kmsg.ListOffsetsResponse)
		for _, t := range q.Topics {
			rt := kmsg.NewListOffsetsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewListOffsetsResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
	case *kmsg.MetadataRequest:
		r := resp.(*kmsg.MetadataResponse)
		r.ErrorCode = code
		for _, t := range q.Topics {
			rt := kmsg.NewMetadataResponseTopic()
			rt.Topic, rt.TopicID, rt.ErrorCode = t.Topic, t.TopicID, code
			r.Topics = append(r.Topics, rt)
		}
	case *kmsg.CreateTopicsRequest:
		r := resp.(*kmsg.CreateTopicsResponse)
		for _, t := range q.Topics {
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic, rt.ErrorCode = t.Topic, code
			r.Topics = append(r.Topics, rt)
		}
	case *kmsg.DeleteTopicsRequest:
		r := resp.(*kmsg.DeleteTopicsResponse)
		for _, name := range q.TopicNames {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.ErrorCode = kmsg.StringPtr(name), code
			r.Topics = append(r.Topics, rt)
		}
		for _, t := range q.Topics {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.TopicID, rt.ErrorCode = t.Topic, t.TopicID, code
			r.Topics = append(r.Topics, rt)
		}
	case *kmsg.CreatePartitionsRequest:
		r := resp.(*kmsg.CreatePartitionsResponse)
		for _, t := range q.Topics {
			rt := kmsg.NewCreatePartitionsResponseTopic()
			rt.Topic, rt.ErrorCode = t.Topic, code
			r.Topics = append(r.Topics, rt)
		}
	case *kmsg.DescribeConfigsRequest:
		r := resp.(*kmsg.DescribeConfigsResponse)
		for _, res := range q.Resources {
			rr := kmsg.NewDescribeConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode = res.ResourceType, res.ResourceName, code
			r.Resources = append(r.Resources, rr)
		}
	case *kmsg.AlterConfigsRequest:
		r := resp.(*kmsg.AlterConfigsResponse)
		for _, res := range q.Resources {
			rr := kmsg.NewAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode = res.ResourceType, res.ResourceName, code
			r.Resources = append(r.Resources, rr)
		}
	case *kmsg.IncrementalAlterConfigsRequest:
		r := resp.(*kmsg.IncrementalAlterConfigsResponse)
		for _, res := range q.Resources {
			rr := kmsg.NewIncrementalAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode = res.ResourceType, res.ResourceName, code
			r.Resources = append(r.Resources, rr)
		}
	case *kmsg.DeleteRecordsRequest:
		r := resp.(*kmsg.DeleteRecordsResponse)
		for _, t := range q.Topics {
			rt := kmsg.NewDeleteRecordsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewDeleteRecordsResponseTopicPartition()
				rp.Partition, rp.ErrorCode, rp.LowWatermark = p.Partition, code, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
	case *kmsg.OffsetForLeaderEpochRequest:
		r := resp.(*kmsg.OffsetForLeaderEpochResponse)
		for _, t := range q.Topics {
			rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
	case *kmsg.DescribeProducersRequest:
		r := resp.(*kmsg.DescribeProducersResponse)
		for _, t := range q.Topics {
			rt := kmsg.NewDescribeProducersResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewDescribeProducersResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
	case *kmsg.FindCoordinatorRequest:
		r := resp.(*kmsg.FindCoordinatorResponse)
		r.ErrorCode = code                    // v0-v3
		for _, k := range q.CoordinatorKeys { // v4+
			rc := kmsg.NewFindCoordinatorResponseCoordinator()
			rc.Key, rc.ErrorCode, rc.NodeID = k, code, -1
			r.Coordinators = append(r.Coordinators, rc)
		}
	case *kmsg.OffsetCommitRequest:
		r := resp.(*kmsg.OffsetCommitResponse)
		for _, t := range q.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
	case *kmsg.OffsetFetchRequest:
		r := resp.(*kmsg.OffsetFetchResponse)
		r.ErrorCode = code // v2-v7
		for _, t := range q.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.ErrorCode = p, -1, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
		for _, g := range q.Groups { // v8+
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, code
			r.Groups = append(r.Groups, rg)
		}
	case *kmsg.DescribeGroupsRequest:
		r := resp.(*kmsg.DescribeGroupsResponse)
		for _, g := range q.Groups {
			rg := kmsg.NewDescribeGroupsResponseGroup()
			rg.Group, rg.ErrorCode = g, code
			r.Groups = append(r.Groups, rg)
		}
	case *kmsg.DeleteGroupsRequest:
		r := resp.(*kmsg.DeleteGroupsResponse)
		for _, g := range q.Groups {
			rg := kmsg.NewDeleteGroupsResponseGroup()
			rg.Group, rg.ErrorCode = g, code
			r.Groups = append(r.Groups, rg)
		}
	default:
		// The other APIs: set a top-level ErrorCode where the response
		// has one; the rest (per-entry codes only) close.
		f := reflect.ValueOf(resp).Elem().FieldByName("ErrorCode")
		if !f.IsValid() || f.Kind() != reflect.Int16 {
			return nil
		}
		f.SetInt(int64(code))
	}
	return resp
}

// unservedResponse is the UNSUPPORTED_VERSION answer to a request for a key
// Strand does not serve (not advertised, or a group key on a broker
// without groups), built without reading the body: the shape pre-check
// knows no layout for such keys, and kmsg must not decode an unchecked
// body. It needs a response with a top-level ErrorCode to say so; for the
// others (and for keys or versions kmsg cannot encode) it returns nil and
// the connection is closed, as Kafka closes on an unknown key.
func unservedResponse(key, version int16) kmsg.Response {
	req := kmsg.RequestForKey(key)
	if req == nil || version < 0 || version > req.MaxVersion() {
		return nil
	}
	req.SetVersion(version)
	resp := req.ResponseKind()
	f := reflect.ValueOf(resp).Elem().FieldByName("ErrorCode")
	if !f.IsValid() || f.Kind() != reflect.Int16 {
		return nil
	}
	// Some responses gained their ErrorCode in a later version
	// (AddPartitionsToTxn v4, DescribeLogDirs v3): kmsg keeps the field at
	// every version but encodes it only where it exists, so compare.
	plain := resp.AppendTo(nil)
	f.SetInt(int64(kerr.UnsupportedVersion.Code))
	if bytes.Equal(plain, resp.AppendTo(nil)) {
		return nil
	}
	return resp
}

// unservedKey answers a request for a key Strand does not serve with
// unservedResponse, or closes the connection when there is none.
func (c *conn) unservedKey(h header) {
	resp := unservedResponse(h.key, h.version)
	if resp == nil {
		c.protocolError("unsupported api key", "key", h.key, "name", kmsg.NameForKey(h.key), "version", h.version)
		return
	}
	c.log.Debug("wire: unserved api key", "key", kmsg.NameForKey(h.key), "version", h.version)
	c.complete(c.push(h), resp)
}
