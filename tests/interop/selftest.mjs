// Runs the interop harness js<->js: two js-peer processes, every command between them.
// Prints one line per step with its time, then 'N passed, N failed'; exit status 1 on failure.
import { readFileSync } from 'node:fs'
import { PeerProcess } from './peer-process.mjs'

const MiB = 1024 * 1024
const a = new PeerProcess('peer-a', ['--listen', '/ip4/127.0.0.1/tcp/0'])
const b = new PeerProcess('peer-b', ['--listen', '/ip4/127.0.0.1/tcp/0'])
const keys = JSON.parse(readFileSync(new URL('../data/js-keys.json', import.meta.url), 'utf8'))
const fixed = keys.ed25519[0]
const c = new PeerProcess('peer-c', ['--listen', '/ip4/127.0.0.1/tcp/0', '--key', fixed.private_pb_hex, '--agent', 'goop-selftest'], { wrapper: true })
let passed = 0
let failed = 0

async function step (name, fn) {
  const t0 = performance.now()
  let err = null
  let detail = ''
  try {
    detail = (await fn()) ?? ''
  } catch (e) {
    err = e
  }
  const ms = Math.round(performance.now() - t0)
  if (err == null) {
    passed++
    console.log(`ok   ${name} (${ms} ms)${detail !== '' ? ' ' + detail : ''}`)
  } else {
    failed++
    console.log(`FAIL ${name} (${ms} ms): ${err.message}`)
  }
}

function need (reply) {
  if (!reply.ok) throw new Error(reply.error)
  return reply
}

function mibps (bytes, ms) {
  return `${(bytes / MiB / (ms / 1000)).toFixed(1)} MiB/s`
}

try {
  const [ia, ib] = await Promise.all([a.start(), b.start()])
  const addrB = ib.addrs[0] // already ends in /p2p/<peer id>
  const pidB = ib.peer_id

  await step('dial', async () => {
    const r = need(await a.cmd({ cmd: 'dial', addr: addrB }))
    if (r.peer_id !== pidB) throw new Error(`dialled ${r.peer_id}, wanted ${pidB}`)
  })
  await step('connection events', async () => {
    const seenA = await a.waitEvent((e) => e.event === 'connection' && e.peer_id === pidB && e.direction === 'outbound') != null
    const seenB = await b.waitEvent((e) => e.event === 'connection' && e.peer_id === ia.peer_id && e.direction === 'inbound') != null
    if (!seenA || !seenB) throw new Error(`outbound event on a: ${seenA}, inbound event on b: ${seenB}`)
  })
  await step('ping x3', async () => {
    const r = need(await a.cmd({ cmd: 'ping', peer_id: pidB, count: 3 }))
    if (r.rtts_ms.length !== 3) throw new Error(`got ${r.rtts_ms.length} rtts`)
    return `rtts ${JSON.stringify(r.rtts_ms)} ms`
  })
  await step('ping by addr', async () => {
    need(await a.cmd({ cmd: 'ping', addr: addrB, count: 1 }))
  })
  await step('identify', async () => {
    const r = need(await a.cmd({ cmd: 'identify', peer_id: pidB }))
    for (const p of ['/ipfs/ping/1.0.0', '/ipfs/id/1.0.0', '/goop-test/echo/1.0.0', '/goop-test/sink/1.0.0',
      '/goop-test/source/1.0.0', '/goop-test/slow/1.0.0']) {
      if (!r.protocols.includes(p)) throw new Error(`protocol ${p} missing from ${JSON.stringify(r.protocols)}`)
    }
    const bare = ib.addrs[0].replace(/\/p2p\/[^/]+$/, '')
    if (!r.listen_addrs.some((x) => x.replace(/\/p2p\/[^/]+$/, '') === bare)) {
      throw new Error(`listen addr ${bare} missing from ${JSON.stringify(r.listen_addrs)}`)
    }
    if (!r.signed_peer_record) throw new Error('no signed peer record')
    return `agent "${r.agent}"`
  })
  await step('echo 0 bytes', async () => {
    need(await a.cmd({ cmd: 'echo', peer_id: pidB, bytes: 0 }))
  })
  await step('echo 1 byte (lazy negotiation)', async () => {
    need(await a.cmd({ cmd: 'echo', peer_id: pidB, bytes: 1, lazy: true }))
  })
  await step('echo 64 MiB', async () => {
    const r = need(await a.cmd({ cmd: 'echo', peer_id: pidB, bytes: 64 * MiB }))
    return mibps(r.sent, r.ms)
  })
  await step('sink 64 MiB', async () => {
    const r = need(await a.cmd({ cmd: 'sink', peer_id: pidB, bytes: 64 * MiB }))
    return mibps(r.sent, r.ms)
  })
  await step('sink 0 bytes', async () => {
    need(await a.cmd({ cmd: 'sink', peer_id: pidB, bytes: 0 }))
  })
  await step('source 64 MiB', async () => {
    const r = need(await a.cmd({ cmd: 'source', peer_id: pidB, bytes: 64 * MiB }))
    return mibps(r.received, r.ms)
  })
  await step('source 1000 bytes', async () => {
    need(await a.cmd({ cmd: 'source', peer_id: pidB, bytes: 1000 }))
  })
  await step('slow 1 MiB', async () => {
    const r = need(await a.cmd({ cmd: 'slow', peer_id: pidB, bytes: 1 * MiB }))
    // 1 MiB at 16 KiB per 100 ms takes about 6.4 s; the window lets the first ~256 KiB in early
    if (r.ms < 3000) throw new Error(`finished in ${r.ms} ms: the reader did not slow the writer`)
    const ev = b.events.find((e) => e.event === 'slow')
    if (ev == null || ev.bytes !== MiB) throw new Error(`no slow event with the byte count on b: ${JSON.stringify(ev)}`)
    return `${r.ms} ms`
  })
  await step('streams 500 x 1 KiB', async () => {
    const r = need(await a.cmd({ cmd: 'streams', peer_id: pidB, count: 500, bytes: 1024 }))
    if (r.count !== 500) throw new Error(`count ${r.count}`)
  })
  await step('reverse direction: b echo 1 MiB to a', async () => {
    need(await b.cmd({ cmd: 'echo', peer_id: ia.peer_id, bytes: MiB }))
  })
  await step('concurrent commands', async () => {
    const rs = await Promise.all([
      a.cmd({ cmd: 'echo', peer_id: pidB, bytes: 4 * MiB }),
      a.cmd({ cmd: 'sink', peer_id: pidB, bytes: 4 * MiB }),
      a.cmd({ cmd: 'source', peer_id: pidB, bytes: 4 * MiB }),
      b.cmd({ cmd: 'ping', peer_id: ia.peer_id, count: 2 })
    ])
    rs.forEach(need)
  })
  await step('fixed key (--key) through js-peer.sh', async () => {
    const ic = await c.start()
    if (ic.peer_id !== fixed.peer_id) throw new Error(`peer id ${ic.peer_id}, want ${fixed.peer_id}`)
    const r = need(await a.cmd({ cmd: 'dial', addr: ic.addrs[0] }))
    if (r.peer_id !== fixed.peer_id) throw new Error(`dialled ${r.peer_id}`)
    const id = need(await a.cmd({ cmd: 'identify', peer_id: fixed.peer_id }))
    if (id.agent !== 'goop-selftest') throw new Error(`agent ${id.agent}`)
    need(await a.cmd({ cmd: 'hangup', peer_id: fixed.peer_id }))
    const ex = await c.stop()
    if (ex.code !== 0) throw new Error(`exit ${JSON.stringify(ex)}`)
  })
  await step('error reply: unknown command', async () => {
    const r = await a.cmd({ cmd: 'nonsense' })
    if (r.ok !== false || typeof r.error !== 'string') throw new Error(JSON.stringify(r))
  })
  await step('error reply: unreachable peer', async () => {
    const r = await a.cmd({ cmd: 'dial', addr: '/ip4/127.0.0.1/tcp/1/p2p/' + ia.peer_id, timeout_ms: 5000 })
    if (r.ok !== false) throw new Error(JSON.stringify(r))
  })
  await step('no handler errors', async () => {
    const bad = [...a.events, ...b.events, ...c.events].filter((e) => e.event === 'handler_error' || e.event === 'error' || e.event === 'garbage')
    if (bad.length > 0) throw new Error(JSON.stringify(bad.slice(0, 3)))
  })
  await step('clean exit', async () => {
    const [ea, eb] = await Promise.all([a.stop(), b.stop()])
    if (ea.code !== 0 || eb.code !== 0) throw new Error(`exit codes ${JSON.stringify([ea, eb])}`)
  })
} catch (err) {
  failed++
  console.log(`FAIL harness: ${err.message}`)
} finally {
  for (const p of [a, b, c]) {
    if (p.child != null && p.exited == null) p.child.kill('SIGKILL')
    if (p.stderr) process.stderr.write(`--- ${p.name} stderr ---\n${p.stderr}`)
  }
}

console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
