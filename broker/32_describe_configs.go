package broker

// DescribeConfigs, key 32, versions 1-4.
//
// Behaviour: a TOPIC resource lists every effective topic config: those
// set on the topic with source TOPIC_CONFIG, the others with their default
// and source DEFAULT_CONFIG (or STATIC_BROKER_CONFIG where kbox runs with a
// broker setting other than Kafka's default). Topic configs are never
// read-only or sensitive. A BROKER resource named with this node's ID
// lists the broker configs clients read (log.retention.ms,
// message.max.bytes, num.partitions, auto.create.topics.enable,
// default.replication.factor, min.insync.replicas, ...) with the values
// kbox uses, all read-only; the empty name (cluster-wide dynamic defaults)
// lists none, as kbox has no dynamic broker configs. ConfigNames filters
// the list; an empty or null list means all. Synonyms (v1+, when asked)
// go from the most specific source to the default; config types and,
// when asked, documentation are filled from v3. Any node answers.
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
		if err := b.brokerResource(name); err != nil {
			return nil, err
		}
		if name == "" {
			return nil, nil
		}
		return b.brokerEntries(), nil
	}
	return nil, newAPIErr(kerr.InvalidRequest.Code, "kbox does not describe configs of resource type %s", typ)
}

func renderConfig(e configEntry, synonyms, docs bool) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	v := e.value
	c.Name, c.Value, c.ReadOnly, c.Source = e.name, &v, e.readOnly, e.source
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
