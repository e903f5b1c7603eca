// A js-libp2p node for the circuit relay interop tests: TCP + Noise + Yamux + Identify +
// Ping, the circuit relay transport (it can dial "/p2p/R/p2p-circuit/p2p/B"), optionally
// the circuit relay v2 server (hop), and /goop-test/echo/1.0.0 on limited (relayed)
// connections too.
//
//   node --import ./polyfill.mjs js-relay.mjs --listen /ip4/127.0.0.1/tcp/0 [--relay]
//        [--max-reservations N] [--limit-data BYTES --limit-duration-ms MS]
//
// Driven like js-peer.mjs (README.md): JSON lines on stdin, replies and events on stdout.
// Commands: dial, hangup, ping, echo, peers, relay_stats, exit.
import { createHash } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import { createInterface } from 'node:readline'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
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

const PATTERN = (() => {
  const b = new Uint8Array(64 * 1024)
  for (let i = 0; i < b.length; i++) b[i] = (i * 31 + 7) & 0xff
  return b
})()

function toBytes (data) {
  return data instanceof Uint8Array ? data : data.subarray()
}

async function write (stream, data) {
  if (!stream.send(data)) await stream.onDrain()
}

// Reads until the remote closes its write side; onChunk sees every chunk.
function consume (stream, onChunk) {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('end', onEnd)
      stream.removeEventListener('close', onClose)
    }
    const onMessage = (evt) => onChunk(toBytes(evt.data))
    const onEnd = () => { cleanup(); resolve() }
    const onClose = (evt) => {
      cleanup()
      if (evt?.error != null) reject(evt.error)
      else resolve()
    }
    stream.addEventListener('message', onMessage)
    stream.addEventListener('end', onEnd)
    stream.addEventListener('close', onClose)
    if (stream.readStatus === 'closed' || stream.remoteWriteStatus === 'closed') { cleanup(); resolve() }
  })
}

async function handleEcho (stream) {
  const pending = []
  await consume(stream, (bytes) => { pending.push(write(stream, bytes)) })
  await Promise.all(pending)
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

  async hangup (node, cmd, signal) {
    await node.hangUp(target(cmd), { signal })
    return {}
  },

  async ping (node, cmd, signal) {
    const n = cmd.count ?? 1
    const rtts = []
    for (let i = 0; i < n; i++) rtts.push(await node.services.ping.ping(target(cmd), { signal }))
    return { rtts_ms: rtts }
  },

  async echo (node, cmd, signal) {
    const n = cmd.bytes ?? 0
    const stream = await node.dialProtocol(target(cmd), ECHO, { signal, runOnLimitedConnection: true })
    const onAbort = () => stream.abort(new Error('timed out'))
    signal.addEventListener('abort', onAbort)
    try {
      const sentHash = createHash('sha256')
      const recvHash = createHash('sha256')
      let received = 0
      const reading = consume(stream, (bytes) => { recvHash.update(bytes); received += bytes.length })
      let sent = 0
      while (sent < n) {
        const chunk = PATTERN.subarray(0, Math.min(PATTERN.length, n - sent))
        sentHash.update(chunk)
        await write(stream, chunk)
        sent += chunk.length
      }
      await stream.close()
      await reading
      const a = sentHash.digest('hex')
      const b = recvHash.digest('hex')
      if (received !== sent || a !== b) throw new Error(`echo mismatch: sent ${sent}, received ${received}`)
      return { sent, received }
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
  },

  async relay_stats (node) {
    const relay = node.services.relay
    if (relay == null) throw new Error('not a relay')
    return { reservations: [...relay.reservations.keys()].map((p) => p.toString()) }
  }
}

async function runCommand (node, cmd) {
  const id = cmd.id ?? null
  const timeoutMs = cmd.timeout_ms ?? DEFAULT_TIMEOUT_MS
  const ctl = new AbortController()
  setMaxListeners(Infinity, ctl.signal)
  const timer = setTimeout(() => ctl.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs)
  try {
    const fn = commands[cmd.cmd]
    if (fn == null) throw new Error(`unknown command ${JSON.stringify(cmd.cmd)}`)
    const timeout = new Promise((resolve, reject) => {
      ctl.signal.addEventListener('abort', () => reject(ctl.signal.reason))
    })
    timeout.catch(() => {})
    const result = await Promise.race([fn(node, cmd, ctl.signal), timeout])
    emit({ id, ok: true, ...result })
  } catch (err) {
    emit({ id, ok: false, error: errorText(err) })
  } finally {
    clearTimeout(timer)
    if (!ctl.signal.aborted) ctl.abort(new Error('command finished'))
  }
}

function parseArgs (argv) {
  const opts = { listen: [], relay: false, maxReservations: 15, limitData: null, limitDurationMs: null }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`)
      return argv[++i]
    }
    if (a === '--listen') opts.listen.push(val())
    else if (a === '--relay') opts.relay = true
    else if (a === '--max-reservations') opts.maxReservations = Number(val())
    else if (a === '--limit-data') opts.limitData = BigInt(val())
    else if (a === '--limit-duration-ms') opts.limitDurationMs = Number(val())
    else throw new Error(`unknown argument ${a}`)
  }
  return opts
}

async function main () {
  const opts = parseArgs(process.argv.slice(2))
  const services = {
    identify: identify({ maxInboundStreams: 8, maxOutboundStreams: 8, runOnLimitedConnection: true }),
    ping: ping({ runOnLimitedConnection: true })
  }
  if (opts.relay) {
    const limited = opts.limitData != null || opts.limitDurationMs != null
    services.relay = circuitRelayServer({
      reservations: {
        maxReservations: opts.maxReservations,
        applyDefaultLimit: limited,
        ...(opts.limitData != null ? { defaultDataLimit: opts.limitData } : {}),
        ...(opts.limitDurationMs != null ? { defaultDurationLimit: opts.limitDurationMs } : {})
      }
    })
  }
  const node = await createLibp2p({
    addresses: { listen: opts.listen },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    connectionManager: { maxConnections: 1000, inboundConnectionThreshold: 1000, maxIncomingPendingConnections: 100 },
    services
  })

  node.addEventListener('connection:open', (evt) => {
    const c = evt.detail
    emit({ event: 'connection', state: 'open', peer_id: c.remotePeer.toString(), direction: c.direction, remote_addr: c.remoteAddr.toString() })
  })
  node.addEventListener('connection:close', (evt) => {
    const c = evt.detail
    emit({ event: 'connection', state: 'closed', peer_id: c.remotePeer.toString(), direction: c.direction, remote_addr: c.remoteAddr.toString() })
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
    try { await node.stop() } catch (err) { code = 1 }
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
      if (cmd == null || typeof cmd !== 'object' || Array.isArray(cmd)) throw new Error('not a JSON object')
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

main().catch((err) => fatal('startup', err))
