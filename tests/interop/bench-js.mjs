// js<->js baseline for the benchmarks: two js-peer processes on loopback, the same commands
// the C<->C benchmark runs. Prints one JSON object per measurement on stdout.
//
// Usage: node --import ./polyfill.mjs bench-js.mjs [--bytes N] [--repeat R] [--streams S] [--pings P]
import { PeerProcess } from './peer-process.mjs'

const opts = { bytes: 64 * 1024 * 1024, repeat: 3, streams: 500, pings: 100, kinds: 'echo,sink,source' }
const argv = process.argv.slice(2)
for (let i = 0; i < argv.length; i += 2) {
  const k = argv[i].replace(/^--/, '')
  if (!(k in opts) || argv[i + 1] == null) {
    console.error(`usage: bench-js.mjs [--bytes N] [--repeat R] [--streams S] [--pings P] [--kinds echo,sink,source]`)
    process.exit(2)
  }
  opts[k] = k === 'kinds' ? argv[i + 1] : Number(argv[i + 1])
}

const a = new PeerProcess('bench-a', ['--listen', '/ip4/127.0.0.1/tcp/0'])
const b = new PeerProcess('bench-b', ['--listen', '/ip4/127.0.0.1/tcp/0'])
let status = 0

function need (r) {
  if (!r.ok) throw new Error(r.error)
  return r
}

try {
  const [, ib] = await Promise.all([a.start(), b.start()])
  const peer = ib.peer_id
  need(await a.cmd({ cmd: 'dial', addr: ib.addrs[0] }))

  const t0 = performance.now()
  const p = need(await a.cmd({ cmd: 'ping', peer_id: peer, count: opts.pings }))
  const sorted = [...p.rtts_ms].sort((x, y) => x - y)
  console.log(JSON.stringify({
    bench: 'ping', count: opts.pings, total_ms: Math.round(performance.now() - t0),
    median_ms: sorted[Math.floor(sorted.length / 2)], max_ms: sorted[sorted.length - 1]
  }))

  for (const kind of opts.kinds.split(',').filter(Boolean)) {
    for (let r = 0; r < opts.repeat; r++) {
      const res = need(await a.cmd({ cmd: kind, peer_id: peer, bytes: opts.bytes, timeout_ms: 600_000 }))
      console.log(JSON.stringify({
        bench: kind, bytes: opts.bytes, ms: res.ms, mib_s: Number((opts.bytes / 1048576 / (res.ms / 1000)).toFixed(1))
      }))
    }
  }
  for (let r = 0; r < opts.repeat; r++) {
    const res = need(await a.cmd({ cmd: 'streams', peer_id: peer, count: opts.streams, bytes: 1024, timeout_ms: 600_000 }))
    console.log(JSON.stringify({ bench: 'streams', count: opts.streams, bytes: 1024, ms: res.ms }))
  }
} catch (err) {
  console.error(`bench failed: ${err.message}`)
  status = 1
} finally {
  await Promise.all([a.stop(), b.stop()]).catch(() => {})
}
process.exit(status)
