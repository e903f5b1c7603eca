// js-libp2p connection-rate baseline for bench/transport.sh: dials ADDR N times in a
// row, each time waiting for identify to finish, then hangs up. Prints one JSON line.
//
// Usage: node --import ./polyfill.mjs bench-connrate.mjs ADDR N
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'

const [addr, nArg] = process.argv.slice(2)
const n = Number(nArg ?? 100)
if (!addr || !(n > 0)) {
  console.error('usage: bench-connrate.mjs ADDR N')
  process.exit(2)
}

const node = await createLibp2p({
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  connectionGater: { denyDialMultiaddr: () => false },
  services: { identify: identify(), ping: ping() }
})
const ma = multiaddr(addr)
const target = addr.split('/p2p/').pop()
let identified = null
node.addEventListener('peer:identify', (evt) => {
  if (evt.detail.peerId.toString() === target && identified) identified()
})
const t0 = performance.now()
for (let i = 0; i < n; i++) {
  const done = new Promise((resolve) => { identified = resolve })
  await node.dial(ma)
  await done
  identified = null
  await node.hangUp(ma)
}
const ms = performance.now() - t0
console.log(JSON.stringify({ bench: 'connrate', impl: 'js', conns: n, ms: Number(ms.toFixed(1)), conns_s: Number((n / (ms / 1000)).toFixed(1)) }))
await node.stop()
process.exit(0)
