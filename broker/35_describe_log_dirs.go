package broker

// DescribeLogDirs, key 35, versions 1-4.
//
// Behaviour: one log directory, the one holding the node's state store,
// listing the requested partitions (all when Topics is null) with their
// size: the bytes of their stored batches. Every node holds every
// partition, caught up to what it has applied, so offset lag is 0 and no
// replica is a future one. Unknown topics and partitions are left out, as
// Kafka leaves them out.
//
// Omissions: TotalBytes and UsableBytes (v4) are -1 (unknown).
//
// Version notes: v0 is not served, as in Kafka 4 (KIP-896); v2 is
// flexible; v3 adds a top-level error code; v4 adds volume sizes
// (KIP-827); v5 (cordoned dirs) is not served.

import (
	"context"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/storage"
)

var describeLogDirsAPI = api{key: 35, min: 1, max: 4, handle: handleDescribeLogDirs}

func handleDescribeLogDirs(b *Broker, _ context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.DescribeLogDirsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = filepath.Dir(b.store.Path())
	if r.Topics == nil {
		for _, info := range b.store.Topics() {
			b.logDirTopic(&dir, info, nil)
		}
	}
	for _, t := range r.Topics {
		if info, ok := b.store.Topic(t.Topic); ok {
			b.logDirTopic(&dir, info, t.Partitions)
		}
	}
	resp.Dirs = append(resp.Dirs, dir)
	return resp, nil
}

// logDirTopic adds a topic's partitions (all when parts is nil) to dir.
func (b *Broker) logDirTopic(dir *kmsg.DescribeLogDirsResponseDir, info storage.TopicInfo, parts []int32) {
	if parts == nil {
		for p := int32(0); p < info.Partitions; p++ {
			parts = append(parts, p)
		}
	}
	dt := kmsg.NewDescribeLogDirsResponseDirTopic()
	dt.Topic = info.Name
	for _, p := range parts {
		offs, err := b.store.Offsets(info.Name, p)
		if err != nil {
			continue
		}
		dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		dp.Partition, dp.Size = p, offs.Bytes
		dt.Partitions = append(dt.Partitions, dp)
	}
	if len(dt.Partitions) > 0 {
		dir.Topics = append(dir.Topics, dt)
	}
}
