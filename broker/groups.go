package broker

// groups coordinates classic consumer groups. Membership and generations
// are in memory, like Kafka's coordinator cache; committed offsets go
// through the replicated log.
type groups struct {
	b *Broker
}

func newGroups(b *Broker) *groups { return &groups{b: b} }

// close stops every group's goroutine.
func (g *groups) close() {}
