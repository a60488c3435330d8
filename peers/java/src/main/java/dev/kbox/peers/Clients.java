package dev.kbox.peers;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Clients runs the Java kafka-clients (Admin, an idempotent acks=all
 * producer with every compression codec, a consumer group member) against
 * one bootstrap address, in one JVM, and prints one line per step:
 *
 * <pre>STEP name {"ok":true,...}</pre>
 *
 * with what the step observed, or {"ok":false,"error":"..."}. A failed
 * step does not stop the ones after it. The Go test (e2e/java_test.go)
 * judges the lines.
 *
 * <p>Usage: Clients BOOTSTRAP TOPIC GROUP
 */
public final class Clients {
    static final String[] CODECS = {"none", "gzip", "snappy", "lz4", "zstd"};
    static final int PER_CODEC = 100;
    static final int PARTITIONS = 3;

    private final String bootstrap, topic, group;

    private Clients(String bootstrap, String topic, String group) {
        this.bootstrap = bootstrap;
        this.topic = topic;
        this.group = group;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: Clients BOOTSTRAP TOPIC GROUP");
            System.exit(2);
        }
        new Clients(args[0], args[1], args[2]).run();
    }

    interface Step {
        void run(Map<String, Object> out) throws Exception;
    }

    private void step(String name, Step s) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("ok", true);
        try {
            s.run(out);
        } catch (Throwable e) {
            Throwable c = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            out.put("ok", false);
            StringBuilder msg = new StringBuilder();
            for (Throwable x = c; x != null; x = x.getCause()) {
                if (msg.length() > 0) msg.append(" <- ");
                msg.append(x.getClass().getSimpleName()).append(": ").append(x.getMessage());
            }
            out.put("error", msg.toString());
        }
        System.out.println("STEP " + name + " " + Json.of(out));
        System.out.flush();
    }

    private void run() {
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        ap.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        try (Admin admin = Admin.create(ap)) {
            step("describeCluster", out -> describeCluster(admin, out));
            step("createTopics", out -> createTopics(admin, out));
            step("describeTopics", out -> describeTopics(admin, out));
            step("describeConfigs", out -> describeConfigs(admin, out));
            step("describeBrokerConfigs", out -> describeBrokerConfigs(admin, out));
            step("produce", this::produce);
            step("consumeGroup", this::consumeGroup);
            step("listConsumerGroupOffsets", out -> listGroupOffsets(admin, out));
            step("describeConsumerGroups", out -> describeGroups(admin, out));
            step("listOffsets", out -> listOffsets(admin, out));
        }
    }

    private void describeCluster(Admin admin, Map<String, Object> out) throws Exception {
        DescribeClusterResult r = admin.describeCluster();
        List<Object> nodes = new ArrayList<>();
        for (Node n : r.nodes().get()) {
            nodes.add(n.id() + "@" + n.host() + ":" + n.port());
        }
        out.put("clusterId", r.clusterId().get());
        out.put("nodes", nodes);
        Node c = r.controller().get();
        out.put("controller", c == null ? -1 : c.id());
    }

    private void createTopics(Admin admin, Map<String, Object> out) throws Exception {
        NewTopic nt = new NewTopic(topic, PARTITIONS, (short) 1)
                .configs(Map.of("retention.ms", "86400000", "cleanup.policy", "delete"));
        CreateTopicsResult r = admin.createTopics(List.of(nt));
        r.all().get(30, TimeUnit.SECONDS);
        out.put("numPartitions", r.numPartitions(topic).get());
        out.put("replicationFactor", r.replicationFactor(topic).get());
        Config cfg = r.config(topic).get(); // fails on null configs or a source of -1
        out.put("configCount", cfg.entries().size());
        out.put("retention.ms", value(cfg, "retention.ms"));
        ConfigEntry e = cfg.get("retention.ms");
        out.put("retention.ms.source", e == null ? null : e.source().toString());
        out.put("topicId", r.topicId(topic).get().toString());
    }

    private void describeTopics(Admin admin, Map<String, Object> out) throws Exception {
        TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
        out.put("name", d.name());
        out.put("internal", d.isInternal());
        out.put("topicId", d.topicId().toString());
        List<Object> parts = new ArrayList<>();
        for (TopicPartitionInfo p : d.partitions()) {
            parts.add(Map.of("partition", p.partition(), "leader", p.leader() == null ? -1 : p.leader().id(),
                    "replicas", p.replicas().size(), "isr", p.isr().size()));
        }
        out.put("partitions", parts);
    }

    private void describeConfigs(Admin admin, Map<String, Object> out) throws Exception {
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Config cfg = admin.describeConfigs(List.of(res)).all().get().get(res);
        Map<String, Object> entries = new TreeMap<>();
        for (ConfigEntry e : cfg.entries()) {
            entries.put(e.name(), Map.of("value", String.valueOf(e.value()), "source", e.source().toString(),
                    "readOnly", e.isReadOnly(), "sensitive", e.isSensitive()));
        }
        out.put("entries", entries);
    }

    private void describeBrokerConfigs(Admin admin, Map<String, Object> out) throws Exception {
        Collection<Node> nodes = admin.describeCluster().nodes().get();
        String id = String.valueOf(nodes.iterator().next().id());
        ConfigResource res = new ConfigResource(ConfigResource.Type.BROKER, id);
        Config cfg = admin.describeConfigs(List.of(res)).all().get().get(res);
        out.put("count", cfg.entries().size());
        for (String k : List.of("log.retention.hours", "num.partitions", "auto.create.topics.enable", "message.max.bytes")) {
            out.put(k, value(cfg, k));
        }
    }

    private void produce(Map<String, Object> out) throws Exception {
        Map<String, Object> offsets = new TreeMap<>();
        int acked = 0;
        for (String codec : CODECS) {
            Properties p = new Properties();
            p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
            p.put(ProducerConfig.LINGER_MS_CONFIG, 20);
            p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 60000);
            // enable.idempotence and acks are left at their defaults (true, all).
            try (KafkaProducer<String, String> pr = new KafkaProducer<>(p)) {
                List<Future<RecordMetadata>> fs = new ArrayList<>();
                for (int i = 0; i < PER_CODEC; i++) {
                    ProducerRecord<String, String> r = new ProducerRecord<>(topic, null, 1700000000000L + i,
                            "k-" + codec + "-" + i, codec + " value " + i + " " + "y".repeat(i % 40));
                    r.headers().add("codec", codec.getBytes(StandardCharsets.UTF_8));
                    r.headers().add("seq", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                    fs.add(pr.send(r));
                }
                pr.flush();
                for (Future<RecordMetadata> f : fs) {
                    RecordMetadata md = f.get();
                    offsets.merge(String.valueOf(md.partition()), 1, (a, b) -> (Integer) a + (Integer) b);
                    acked++;
                }
            }
        }
        out.put("acked", acked);
        out.put("byPartition", offsets);
    }

    private void consumeGroup(Map<String, Object> out) throws Exception {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        int want = CODECS.length * PER_CODEC;
        int got = 0, badHeaders = 0, badTimestamps = 0;
        Set<String> keys = new java.util.HashSet<>();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
            c.subscribe(List.of(topic));
            while (got < want && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                    got++;
                    keys.add(r.key());
                    Header h = r.headers().lastHeader("codec");
                    String codec = h == null ? "" : new String(h.value(), StandardCharsets.UTF_8);
                    if (!r.key().startsWith("k-" + codec + "-") || !r.value().startsWith(codec + " value ")) {
                        badHeaders++;
                    }
                    int i = Integer.parseInt(r.key().substring(r.key().lastIndexOf('-') + 1));
                    if (r.timestamp() != 1700000000000L + i) {
                        badTimestamps++;
                    }
                }
                c.commitSync();
            }
            out.put("assignment", c.assignment().size());
        }
        out.put("consumed", got);
        out.put("distinctKeys", keys.size());
        out.put("badHeaders", badHeaders);
        out.put("badTimestamps", badTimestamps);
    }

    private void listGroupOffsets(Admin admin, Map<String, Object> out) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> m = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        long sum = 0;
        for (OffsetAndMetadata o : m.values()) {
            sum += o.offset();
        }
        out.put("partitions", m.size());
        out.put("sum", sum);
    }

    private void describeGroups(Admin admin, Map<String, Object> out) throws Exception {
        ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
        out.put("state", d.groupState().toString());
        out.put("members", d.members().size());
        out.put("protocolType", d.type().toString());
    }

    private void listOffsets(Admin admin, Map<String, Object> out) throws Exception {
        Map<TopicPartition, OffsetSpec> req = new HashMap<>();
        for (int i = 0; i < PARTITIONS; i++) {
            req.put(new TopicPartition(topic, i), OffsetSpec.latest());
        }
        ListOffsetsResult r = admin.listOffsets(req);
        long sum = 0;
        for (ListOffsetsResult.ListOffsetsResultInfo i : r.all().get().values()) {
            sum += i.offset();
        }
        out.put("latestSum", sum);
        ListOffsetsResult byTs = admin.listOffsets(Map.of(new TopicPartition(topic, 0), OffsetSpec.forTimestamp(1700000000000L + 50)));
        ListOffsetsResult.ListOffsetsResultInfo i = byTs.partitionResult(new TopicPartition(topic, 0)).get();
        out.put("byTimestampOffset", i.offset());
        out.put("byTimestampTimestamp", i.timestamp());
    }

    private static String value(Config cfg, String name) {
        ConfigEntry e = cfg.get(name);
        return e == null ? null : e.value();
    }

    /** Json writes maps, lists, strings, numbers, booleans and null. */
    static final class Json {
        static String of(Object o) {
            StringBuilder b = new StringBuilder();
            write(b, o);
            return b.toString();
        }

        private static void write(StringBuilder b, Object o) {
            if (o == null) {
                b.append("null");
            } else if (o instanceof Map<?, ?> m) {
                b.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    if (!first) b.append(',');
                    first = false;
                    write(b, String.valueOf(e.getKey()));
                    b.append(':');
                    write(b, e.getValue());
                }
                b.append('}');
            } else if (o instanceof Collection<?> c) {
                b.append('[');
                boolean first = true;
                for (Object e : c) {
                    if (!first) b.append(',');
                    first = false;
                    write(b, e);
                }
                b.append(']');
            } else if (o instanceof Number || o instanceof Boolean) {
                b.append(o);
            } else {
                b.append('"');
                for (char ch : o.toString().toCharArray()) {
                    switch (ch) {
                        case '"' -> b.append("\\\"");
                        case '\\' -> b.append("\\\\");
                        case '\n' -> b.append("\\n");
                        case '\r' -> b.append("\\r");
                        case '\t' -> b.append("\\t");
                        default -> {
                            if (ch < 0x20) b.append(String.format("\\u%04x", (int) ch));
                            else b.append(ch);
                        }
                    }
                }
                b.append('"');
            }
        }
    }
}
