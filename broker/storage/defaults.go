package storage

import (
	"fmt"
	"maps"

	bolt "go.etcd.io/bbolt"
)

// Cluster-wide defaults of topic configs. A topic config not set on a
// topic takes the cluster-wide default if there is one, else Kafka's
// default (TopicConfig.Default). [AlterDefaults] changes them; the broker
// shows them as the dynamic cluster-default broker configs Kafka names as
// each topic config's synonym (log.retention.ms for retention.ms, ...).

// bucketDefaults, inside the meta bucket, maps topic config names to their
// cluster-wide defaults. It is absent until the first AlterDefaults.
var bucketDefaults = []byte("defaults")

// initialDefaults are the defaults of a cluster no AlterDefaults has
// changed: a cluster-level min.insync.replicas of 1, as Apache Kafka 4.1
// creates when it bootstraps a cluster, where Eligible Leader Replicas are
// enabled by default (KIP-966: the controller writes the cluster-level
// min.insync.replicas from its static config, 1 unless set). Nothing is
// written at start-up: the defaults bucket, absent until the first
// AlterDefaults, reads as these, and that AlterDefaults starts from them,
// so a fresh node, one replaying the log and one restored from a snapshot
// hold the same state.
func initialDefaults() map[string]string {
	return map[string]string{"min.insync.replicas": "1"}
}

// loadDefaults reads the cluster-wide defaults from the meta bucket.
func loadDefaults(meta *bolt.Bucket) map[string]string {
	db := meta.Bucket(bucketDefaults)
	if db == nil {
		return initialDefaults()
	}
	out := map[string]string{}
	_ = db.ForEach(func(k, v []byte) error {
		out[string(k)] = string(v)
		return nil
	})
	return out
}

// alterDefaults applies an AlterDefaults: every value is checked before
// anything changes, then the bucket is rewritten with the new defaults.
func (a *applier) alterDefaults(c AlterDefaults) (any, error) {
	next := map[string]string{}
	if !c.Replace {
		maps.Copy(next, a.defaults)
	}
	for _, k := range c.Delete {
		delete(next, k)
	}
	for k, v := range c.Set {
		if err := ValidateConfig(k, v); err != nil {
			return err, nil
		}
		next[k] = v
	}
	meta := a.tx.Bucket(bucketMeta)
	if meta.Bucket(bucketDefaults) != nil {
		if err := meta.DeleteBucket(bucketDefaults); err != nil {
			return nil, fmt.Errorf("alter defaults: %w", err)
		}
	}
	db, err := meta.CreateBucket(bucketDefaults)
	if err != nil {
		return nil, fmt.Errorf("alter defaults: %w", err)
	}
	for k, v := range next {
		if err := db.Put([]byte(k), []byte(v)); err != nil {
			return nil, fmt.Errorf("alter defaults: %w", err)
		}
	}
	a.defaults, a.defaultsDirty = next, true
	return nil, nil
}

// Defaults returns the cluster-wide defaults of topic configs, by topic
// config name.
func (s *Store) Defaults() map[string]string {
	return maps.Clone(*s.defaults.Load())
}
