// clients.js runs kafkajs (admin, producer, consumer group) against one
// bootstrap address and prints one line per step:
//
//   STEP name {"ok":true,...}
//
// with what the step observed, or {"ok":false,"error":"..."}. A failed
// step does not stop the ones after it. e2e/kafkajs_test.go judges them.
//
// Usage: node clients.js BOOTSTRAP TOPIC GROUP
'use strict'

const { Kafka, CompressionTypes, logLevel } = require('kafkajs')

const [bootstrap, topic, groupId] = process.argv.slice(2)
if (!groupId) {
  console.error('usage: node clients.js BOOTSTRAP TOPIC GROUP')
  process.exit(2)
}

const PARTITIONS = 2
const PER_BATCH = 100
const BASE_TS = 1700000000000

const kafka = new Kafka({
  clientId: 'kbox-e2e-kafkajs',
  brokers: [bootstrap],
  logLevel: logLevel.ERROR,
  retry: { retries: 5, initialRetryTime: 100 }
})

async function step (name, fn) {
  const out = { ok: true }
  try {
    await fn(out)
  } catch (e) {
    out.ok = false
    out.error = `${e.name}: ${e.message}${e.cause ? ' <- ' + e.cause : ''}`
  }
  process.stdout.write(`STEP ${name} ${JSON.stringify(out)}\n`)
}

function messages (codec) {
  const ms = []
  for (let i = 0; i < PER_BATCH; i++) {
    ms.push({
      key: `k-${codec}-${i}`,
      value: `${codec} value ${i}`,
      timestamp: String(BASE_TS + i),
      headers: { codec, seq: String(i) }
    })
  }
  return ms
}

async function main () {
  const admin = kafka.admin()
  await admin.connect()

  await step('createTopics', async out => {
    out.created = await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true })
    const md = await admin.fetchTopicMetadata({ topics: [topic] })
    out.partitions = md.topics[0].partitions.length
  })

  await step('produce', async out => {
    const producer = kafka.producer({ allowAutoTopicCreation: false })
    await producer.connect()
    out.results = []
    for (const [codec, type] of [['none', CompressionTypes.None], ['gzip', CompressionTypes.GZIP]]) {
      const rs = await producer.send({ topic, acks: -1, compression: type, messages: messages(codec) })
      out.results.push(...rs.map(r => ({ partition: r.partition, errorCode: r.errorCode, baseOffset: r.baseOffset })))
    }
    await producer.disconnect()
  })

  await step('consumeGroup', async out => {
    const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    const want = 2 * PER_BATCH
    const seen = new Set()
    const next = {}
    let bad = 0
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`consumed ${seen.size} of ${want} in 60s`)), 60000)
      consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          const codec = message.headers.codec && message.headers.codec.toString()
          const i = Number(message.headers.seq && message.headers.seq.toString())
          if (message.key.toString() !== `k-${codec}-${i}` || message.value.toString() !== `${codec} value ${i}` ||
              message.timestamp !== String(BASE_TS + i)) {
            bad++
          }
          seen.add(message.key.toString())
          next[partition] = String(Number(message.offset) + 1)
          if (seen.size >= want) {
            clearTimeout(timer)
            resolve()
          }
        }
      }).catch(reject)
    })
    await consumer.commitOffsets(Object.entries(next).map(([partition, offset]) => ({ topic, partition: Number(partition), offset })))
    await consumer.disconnect()
    out.consumed = seen.size
    out.bad = bad
  })

  await step('fetchOffsets', async out => {
    const res = await admin.fetchOffsets({ groupId, topics: [topic] })
    out.sum = res[0].partitions.reduce((s, p) => s + Number(p.offset), 0)
  })

  await step('describeGroups', async out => {
    const res = await admin.describeGroups([groupId])
    out.state = res.groups[0].state
    out.protocolType = res.groups[0].protocolType
    out.errorCode = res.groups[0].errorCode
  })

  await step('fetchTopicOffsetsByTimestamp', async out => {
    const res = await admin.fetchTopicOffsetsByTimestamp(topic, BASE_TS + 50)
    out.offsets = res.map(p => ({ partition: p.partition, offset: p.offset }))
  })

  await admin.disconnect()
}

main().then(() => process.exit(0), e => {
  console.error(e)
  process.exit(1)
})
