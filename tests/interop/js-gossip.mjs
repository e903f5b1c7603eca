// A js-libp2p node with @libp2p/gossipsub for the libgoop pubsub interop test.
//
//   node --import ./polyfill.mjs js-gossip.mjs --listen /ip4/127.0.0.1/tcp/0 [--nosign]
//
// Same JSON-lines interface as js-peer.mjs: first line {"event":"listening","peer_id":..,
// "addrs":[..]}, then one command per stdin line and one reply per command:
//   {"cmd":"dial","addr":A}                      -> {"ok":true}
//   {"cmd":"subscribe","topic":T}                -> {"ok":true}
//   {"cmd":"publish","topic":T,"data":S}         -> {"ok":true,"recipients":N}
//   {"cmd":"state","topic":T}                    -> {"ok":true,"mesh":[ids],"subscribers":[ids]}
//   {"cmd":"received"}                           -> {"ok":true,"messages":[{"topic","data","from"}]}
//   {"cmd":"exit"}
// --nosign publishes without from/seqno/signature (StrictNoSign), which libgoop must reject.
import { createInterface } from 'node:readline'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const errorText = (err) => (err == null ? 'unknown error' : (err.message ?? String(err)))
process.on('unhandledRejection', (err) => { emit({ event: 'error', fatal: true, error: errorText(err) }); process.exit(1) })

const listen = []
let nosign = false
for (let i = 2; i < process.argv.length; i++) {
  if (process.argv[i] === '--listen') listen.push(process.argv[++i])
  else if (process.argv[i] === '--nosign') nosign = true
}

const node = await createLibp2p({
  addresses: { listen },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  connectionGater: { denyDialMultiaddr: () => false },
  services: {
    identify: identify(),
    pubsub: gossipsub({
      allowPublishToZeroTopicPeers: true,
      globalSignaturePolicy: nosign ? 'StrictNoSign' : 'StrictSign',
      heartbeatInterval: 1000
    })
  }
})
const ps = node.services.pubsub
const received = []
const dec = new TextDecoder()
ps.addEventListener('message', (evt) => {
  const m = evt.detail
  received.push({ topic: m.topic, data: dec.decode(m.data), from: m.type === 'signed' ? m.from.toString() : null })
})

emit({ event: 'listening', peer_id: node.peerId.toString(), addrs: node.getMultiaddrs().map((a) => a.toString()) })

async function handle (cmd) {
  switch (cmd.cmd) {
    case 'dial':
      await node.dial(multiaddr(cmd.addr))
      return {}
    case 'subscribe':
      ps.subscribe(cmd.topic)
      return {}
    case 'publish': {
      const r = await ps.publish(cmd.topic, new TextEncoder().encode(cmd.data))
      return { recipients: r.recipients.length }
    }
    case 'state':
      return {
        mesh: ps.getMeshPeers(cmd.topic).map((p) => p.toString()),
        subscribers: ps.getSubscribers(cmd.topic).map((p) => p.toString())
      }
    case 'received':
      return { messages: received }
    case 'exit':
      await node.stop()
      emit({ id: cmd.id, ok: true })
      process.exit(0)
    default:
      throw new Error('unknown command ' + cmd.cmd)
  }
}

const rl = createInterface({ input: process.stdin })
rl.on('line', async (line) => {
  let cmd
  try { cmd = JSON.parse(line) } catch { return }
  try {
    const r = await handle(cmd)
    emit({ id: cmd.id, ok: true, ...r })
  } catch (err) {
    emit({ id: cmd.id, ok: false, error: errorText(err) })
  }
})
rl.on('close', async () => { await node.stop(); process.exit(0) })
