package broker

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/kbox-dev/kbox/broker/storage"
)

// createTopic proposes a topic with a fresh random ID. partitions <= 0
// means the broker default (num.partitions).
func (b *Broker) createTopic(ctx context.Context, name string, partitions int32, configs map[string]string) error {
	if partitions <= 0 {
		partitions = b.cfg.DefaultPartitions
	}
	cmd := storage.CreateTopic{Name: name, Partitions: partitions, Configs: configs}
	if _, err := rand.Read(cmd.ID[:]); err != nil {
		return fmt.Errorf("topic id: %w", err)
	}
	res, err := b.propose(ctx, cmd)
	if err != nil {
		return err
	}
	if e, ok := res.(error); ok {
		return e
	}
	return nil
}
