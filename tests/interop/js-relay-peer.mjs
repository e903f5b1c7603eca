// A js-libp2p node that uses a circuit relay as a client: TCP + Noise + Yamux + Identify +
// Ping + the circuit relay transport. With "--listen <relay addr>/p2p/<relay>/p2p-circuit"
// it reserves a slot on that relay before it reports "listening" (its circuit addresses are
// then among "addrs"); any node can dial ".../p2p/<relay>/p2p-circuit/p2p/<peer>". Serves
// /goop-test/echo/1.0.0 on relayed (limited) connections too. Used by
// interop-js-relay-server.c to check that libgoop's relay service relays between two js
// peers.
//
//   node --import ./polyfill.mjs js-relay-peer.mjs [--listen MA]...
//
// JSON lines on stdin and stdout as js-peer.mjs (README.md). Commands: dial {addr},
// ping {addr|peer_id, count}, echo {addr|peer_id, bytes}, peers, exit.
import { createHash } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import { createInterface } from 'node:readline'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

const ECHO = '/goop-test/echo/1.0.0'
const DEFAULT_TIMEOUT_MS = 120_000

function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function errorText (err) {
  if (err == null) return 'unknown error'
  const name = err.name != null && err.name !== 'Error' ? `${err.name}: ` : ''
  return name + (err.message ?? String(err))
}

function fatal (what, err) {
  emit({ event: 'error', fatal: true, where: what, error: errorText(err) })
  process.exit(1)
}

process.on('unhandledRejection', (err) => fatal('unhandledRejection', err))
process.on('uncaughtException', (err) => fatal('uncaughtException', err))

// byte i = (i*31 + 7) & 0xff, as in js-peer.mjs
const BLOCK = (() => {
  const b = new Uint8Array(64 * 1024)
  for (let i = 0; i < b.length; i++) b[i] = (i * 31 + 7) & 0xff
  return b
})()

function toBytes (data) {
  return data instanceof Uint8Array ? data : data.subarray()
}

// Reads until the remote closes its write side; onChunk may return a promise (backpressure).
function consume (stream, onChunk) {
  return new Promise((resolve, reject) => {
    let pending = Promise.resolve()
    let done = false
    const finish = (err) => {
      if (done) return
      done = true
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('end', onEnd)
      stream.removeEventListener('close', onClose)
      if (err != null) reject(err)
      else pending.then(resolve, reject)
    }
    const onMessage = (evt) => {
      const r = onChunk(toBytes(evt.data))
      if (r != null && typeof r.then === 'function') {
        try { stream.pause() } catch {}
        pending = pending.then(() => r).then(() => { try { stream.resume() } catch {} })
        pending.catch((err) => finish(err))
      }
    }
    const onEnd = () => finish()
    const onClose = (evt) => finish(evt.error ?? undefined)
    stream.addEventListener('message', onMessage)
    stream.addEventListener('end', onEnd)
    stream.addEventListener('close', onClose)
    if (stream.readableEnded) finish()
  })
}

async function handleEcho (stream) {
  await consume(stream, (bytes) => {
    if (!stream.send(bytes)) return stream.onDrain()
  })
  await stream.close()
}

function target (cmd) {
  if (cmd.addr != null) return multiaddr(cmd.addr)
  if (cmd.peer_id != null) return peerIdFromString(cmd.peer_id)
  throw new Error('need "addr" or "peer_id"')
}

const commands = {
  async dial (node, cmd, signal) {
    const conn = await node.dial(target(cmd), { signal })
    return { peer_id: conn.remotePeer.toString(), remote_addr: conn.remoteAddr.toString(), limited: conn.limits != null }
  },

  async ping (node, cmd, signal) {
    const n = cmd.count ?? 1
    const rtts = []
    for (let i = 0; i < n; i++) rtts.push(await node.services.ping.ping(target(cmd), { signal }))
    return { rtts_ms: rtts }
  },

  async echo (node, cmd, signal) {
    const total = cmd.bytes ?? 0
    const stream = await node.dialProtocol(target(cmd), ECHO, { signal, runOnLimitedConnection: true })
    const onAbort = () => stream.abort(new Error('timed out'))
    signal.addEventListener('abort', onAbort)
    try {
      const sentHash = createHash('sha256')
      const recvHash = createHash('sha256')
      let received = 0
      const reading = consume(stream, (bytes) => {
        recvHash.update(bytes)
        received += bytes.length
      })
      let sent = 0
      while (sent < total) {
        const chunk = BLOCK.subarray(0, Math.min(BLOCK.length, total - sent))
        sentHash.update(chunk)
        if (!stream.send(chunk)) await stream.onDrain()
        sent += chunk.length
      }
      await stream.close()
      await reading
      const a = sentHash.digest('hex')
      const b = recvHash.digest('hex')
      if (received !== sent || a !== b) throw new Error(`echo mismatch: sent ${sent} (${a}), received ${received} (${b})`)
      return { sent, received, sha256: a }
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  },

  async peers (node) {
    return {
      connections: node.getConnections().map((c) => ({
        peer_id: c.remotePeer.toString(),
        direction: c.direction,
        remote_addr: c.remoteAddr.toString(),
        status: c.status,
        limited: c.limits != null
      }))
    }
  }
}

async function runCommand (node, cmd) {
  const id = cmd.id ?? null
  const ctl = new AbortController()
  setMaxListeners(Infinity, ctl.signal)
  const timeoutMs = cmd.timeout_ms ?? DEFAULT_TIMEOUT_MS
  const timer = setTimeout(() => ctl.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs)
  try {
    const fn = commands[cmd.cmd]
    if (fn == null) throw new Error(`unknown command ${JSON.stringify(cmd.cmd)}`)
    const timeout = new Promise((resolve, reject) => {
      ctl.signal.addEventListener('abort', () => reject(ctl.signal.reason))
    })
    timeout.catch(() => {})
    emit({ id, ok: true, ...(await Promise.race([fn(node, cmd, ctl.signal), timeout])) })
  } catch (err) {
    emit({ id, ok: false, error: errorText(err) })
  } finally {
    clearTimeout(timer)
    if (!ctl.signal.aborted) ctl.abort(new Error('command finished'))
  }
}

async function main () {
  const listen = []
  const argv = process.argv.slice(2)
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--listen' && i + 1 < argv.length) listen.push(argv[++i])
    else throw new Error(`unknown argument ${argv[i]}`)
  }
  const node = await createLibp2p({
    addresses: { listen },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // the default gater refuses to dial private and loopback addresses
    connectionGater: { denyDialMultiaddr: () => false },
    // every relayed connection comes from the relay's address: no per-host rate limit
    connectionManager: { maxConnections: 1000, inboundConnectionThreshold: 1000, maxIncomingPendingConnections: 100 },
    services: { identify: identify(), ping: ping() }
  })
  node.addEventListener('connection:open', (evt) => {
    const c = evt.detail
    emit({ event: 'connection', state: 'open', peer_id: c.remotePeer.toString(), remote_addr: c.remoteAddr.toString(), limited: c.limits != null })
  })
  node.addEventListener('connection:close', (evt) => {
    const c = evt.detail
    emit({ event: 'connection', state: 'closed', peer_id: c.remotePeer.toString(), remote_addr: c.remoteAddr.toString() })
  })
  await node.handle(ECHO, (stream) => {
    handleEcho(stream).catch((err) => {
      emit({ event: 'handler_error', protocol: ECHO, error: errorText(err) })
      try { stream.abort(err) } catch {}
    })
  }, { runOnLimitedConnection: true })
  await node.start()
  emit({ event: 'listening', peer_id: node.peerId.toString(), addrs: node.getMultiaddrs().map((a) => a.toString()) })

  let stopping = false
  const stop = async (code) => {
    if (stopping) return
    stopping = true
    try { await node.stop() } catch { code = 1 }
    process.exit(code)
  }
  process.on('SIGTERM', () => { stop(0) })
  process.on('SIGINT', () => { stop(0) })
  const running = new Set()
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity })
  rl.on('line', (line) => {
    if (line.trim() === '') return
    let cmd
    try {
      cmd = JSON.parse(line)
    } catch (err) {
      emit({ id: null, ok: false, error: `bad command line: ${errorText(err)}` })
      return
    }
    if (cmd.cmd === 'exit') {
      emit({ id: cmd.id ?? null, ok: true })
      stop(0)
      return
    }
    const p = runCommand(node, cmd)
    running.add(p)
    p.finally(() => running.delete(p))
  })
  rl.on('close', async () => {
    await Promise.allSettled([...running])
    stop(0)
  })
}

main().catch((err) => fatal('main', err))
