package broker

// DescribeConfigs, key 32, versions 1-4.
//
// Behaviour: a TOPIC resource lists every effective topic config: those
// set on the topic with source TOPIC_CONFIG, the others with the value of
// a cluster-wide default (DYNAMIC_DEFAULT_BROKER_CONFIG; a new cluster
// has min.insync.replicas=1, as Kafka 4.1's) or Kafka's default
// (DEFAULT_CONFIG). Topic configs are never read-only or sensitive. A
// BROKER resource named with this node's ID lists the broker configs
// clients read: the broker synonyms of every topic config (dynamic, so not
// read-only: message.max.bytes, log.retention.ms, log.cleanup.policy,
// min.insync.replicas, ...), their read-only fallbacks
// (log.retention.hours, log.roll.hours, ...) and kbox's start-up settings
// (num.partitions, auto.create.topics.enable, default.replication.factor,
// broker.id, log.dirs, ...; STATIC_BROKER_CONFIG where not Kafka's
// default). Each takes the value and source of its first synonym; one
// with none, like log.retention.ms while only log.retention.hours holds,
// is null, as in Kafka. The empty name lists the cluster-wide defaults
// that are set. ConfigNames filters the list; an empty or null list means
// all. Synonyms (v1+, when asked) follow Kafka's ConfigHelper, from the
// most specific source to the default; config types and, when asked,
// documentation are filled from v3. Any node answers.
//
// Errors: UNKNOWN_TOPIC_OR_PARTITION for a missing topic,
// INVALID_TOPIC_EXCEPTION for an illegal name, INVALID_REQUEST for another
// node's ID, a non-numeric broker name or an unsupported resource type
// (BROKER_LOGGER, CLIENT_METRICS, GROUP).
//
// Version notes: v0 (IsDefault instead of a source) is not served, as in
// Kafka 4 (KIP-896); v1 adds sources and synonyms; v3 adds config types
// and documentation (KIP-569); v4 is flexible.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/storage"
)

var describeConfigsAPI = api{key: 32, min: 1, max: 4, handle: handleDescribeConfigs}

func handleDescribeConfigs(b *Broker, _ context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.DescribeConfigsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range r.Resources {
		res := kmsg.NewDescribeConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		entries, err := b.describeResource(rr.ResourceType, rr.ResourceName)
		res.ErrorCode, res.ErrorMessage = answer(err)
		for _, e := range entries {
			if len(rr.ConfigNames) > 0 && !slices.Contains(rr.ConfigNames, e.name) {
				continue
			}
			res.Configs = append(res.Configs, renderConfig(e, r.IncludeSynonyms, r.IncludeDocumentation))
		}
		resp.Resources = append(resp.Resources, res)
	}
	return resp, nil
}

func (b *Broker) describeResource(typ kmsg.ConfigResourceType, name string) ([]configEntry, error) {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		if err := storage.ValidateTopicName(name); err != nil {
			return nil, err
		}
		info, ok := b.store.Topic(name)
		if !ok {
			return nil, newAPIErr(kerr.UnknownTopicOrPartition.Code, "topic %s does not exist", name)
		}
		return b.topicEntries(info.Configs), nil
	case kmsg.ConfigResourceTypeBroker:
		if err := b.brokerResource(name, true); err != nil {
			return nil, err
		}
		if name == "" {
			return b.clusterDefaultEntries(), nil
		}
		return b.brokerEntries(), nil
	}
	return nil, newAPIErr(kerr.InvalidRequest.Code, "kbox does not describe configs of resource type %s", typ)
}

func renderConfig(e configEntry, synonyms, docs bool) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	v := e.value
	c.Name, c.Value, c.ReadOnly, c.Source = e.name, &v, e.readOnly, e.source
	if e.null {
		c.Value = nil
	}
	c.IsDefault = e.source == kmsg.ConfigSourceDefaultConfig
	c.ConfigType = kmsg.ConfigType(e.typ)
	if docs && e.doc != "" {
		d := e.doc
		c.Documentation = &d
	}
	if synonyms {
		for _, s := range e.synonyms {
			ks := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			sv := s.value
			ks.Name, ks.Value, ks.Source = s.name, &sv, s.source
			c.ConfigSynonyms = append(c.ConfigSynonyms, ks)
		}
	}
	return c
}
