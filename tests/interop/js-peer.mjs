// A js-libp2p node (TCP + Noise + Yamux + Identify + Ping) for the libgoop interop tests.
//
//   node --import ./polyfill.mjs js-peer.mjs --listen /ip4/127.0.0.1/tcp/0 [--key <hex>]
//
// It is driven through stdin/stdout, one JSON object per line; see README.md for the
// commands, the events it prints and the /goop-test/* protocols it serves.
import { createHash } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import { createInterface } from 'node:readline'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

export const ECHO = '/goop-test/echo/1.0.0'
export const SINK = '/goop-test/sink/1.0.0'
export const SOURCE = '/goop-test/source/1.0.0'
export const SLOW = '/goop-test/slow/1.0.0'

const MAX_STREAMS = 1024
const DEFAULT_TIMEOUT_MS = 120_000
const SLOW_CHUNK = 16 * 1024
const SLOW_INTERVAL_MS = 100

// ---- output -----------------------------------------------------------------------------

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

// ---- the deterministic byte stream: byte i = (i*31 + 7) & 0xff -----------------------------

// The pattern repeats every 256 bytes, so any chunk that starts at a multiple of 256 is a
// prefix of this block.
const PATTERN_BLOCK = (() => {
  const b = new Uint8Array(64 * 1024)
  for (let i = 0; i < b.length; i++) b[i] = (i * 31 + 7) & 0xff
  return b
})()

function patternChunk (offset, len) {
  // offset is always a multiple of PATTERN_BLOCK.length here
  return PATTERN_BLOCK.subarray(0, len)
}

// Checks received bytes against the pattern, byte by byte, from a running offset.
class PatternChecker {
  constructor () {
    this.offset = 0
    this.firstBad = -1
  }

  update (bytes) {
    if (this.firstBad < 0) {
      const start = this.offset % 256
      for (let i = 0; i < bytes.length; i++) {
        if (bytes[i] !== PATTERN_BLOCK[(start + i) % 256]) {
          this.firstBad = this.offset + i
          break
        }
      }
    }
    this.offset += bytes.length
  }
}

// ---- stream helpers (js-libp2p 3 message-stream API) --------------------------------------

function toBytes (data) {
  return data instanceof Uint8Array ? data : data.subarray()
}

// Writes data, waiting for the stream to drain when its send buffer is full.
async function write (stream, data) {
  if (!stream.send(data)) await stream.onDrain()
}

// Writes `total` pattern bytes; onChunk(bytes) sees each chunk.
async function writePattern (stream, total, onChunk) {
  let sent = 0
  while (sent < total) {
    const n = Math.min(PATTERN_BLOCK.length, total - sent)
    const chunk = patternChunk(sent, n)
    if (onChunk != null) onChunk(chunk)
    await write(stream, chunk)
    sent += n
  }
  return sent
}

// Reads the stream until the remote closes its write side. onChunk(Uint8Array) is called
// for each chunk in order; if it returns a promise, reading pauses until it settles
// (backpressure reaches the remote through the muxer's flow control). Resolves once all
// data is handled, rejects if the stream is reset or aborted.
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
      let r
      try {
        r = onChunk(toBytes(evt.data))
      } catch (err) {
        finish(err)
        return
      }
      if (r != null && typeof r.then === 'function') {
        try { stream.pause() } catch {}
        pending = pending.then(() => r).then(() => {
          try { stream.resume() } catch {}
        })
        pending.catch((err) => finish(err))
      }
    }
    const onEnd = () => finish()
    const onClose = (evt) => {
      if (evt.error != null) finish(evt.error)
      else finish()
    }
    stream.addEventListener('message', onMessage)
    stream.addEventListener('end', onEnd)
    stream.addEventListener('close', onClose)
    if (stream.readableEnded) finish()
  })
}

function u64be (n) {
  const b = Buffer.alloc(8)
  b.writeBigUInt64BE(BigInt(n))
  return b
}

function readU64be (bytes) {
  const v = Buffer.from(bytes).readBigUInt64BE(0)
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`length ${v} too large`)
  return Number(v)
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// ---- protocol handlers (the server side of /goop-test/*) ----------------------------------

// echo: every byte back until the remote closes its write side, then close.
async function handleEcho (stream) {
  await consume(stream, (bytes) => {
    if (!stream.send(bytes)) return stream.onDrain()
  })
  await stream.close()
}

// sink: read everything, answer with the 32-byte SHA-256 of it, close.
async function handleSink (stream) {
  const h = createHash('sha256')
  await consume(stream, (bytes) => { h.update(bytes) })
  await write(stream, h.digest())
  await stream.close()
}

// source: read an 8-byte big-endian N, write N pattern bytes, close. Anything else the
// remote sends is read and dropped.
async function handleSource (stream) {
  const rest = consume(stream, () => {})
  const header = await readHeader(stream, rest)
  const n = readU64be(header)
  await writePattern(stream, n)
  await stream.close()
  await rest
}

// The source header: first 8 bytes of the stream, read by a listener that runs next to
// the `consume` above (both see every message).
function readHeader (stream, ended) {
  return new Promise((resolve, reject) => {
    const parts = []
    let have = 0
    const onMessage = (evt) => {
      const bytes = toBytes(evt.data)
      parts.push(bytes)
      have += bytes.length
      if (have >= 8) {
        stream.removeEventListener('message', onMessage)
        resolve(Buffer.concat(parts).subarray(0, 8))
      }
    }
    stream.addEventListener('message', onMessage)
    ended.then(() => {
      stream.removeEventListener('message', onMessage)
      reject(new Error(`stream ended after ${have} of 8 header bytes`))
    }, (err) => {
      stream.removeEventListener('message', onMessage)
      reject(err)
    })
  })
}

// slow: read at about SLOW_CHUNK bytes per SLOW_INTERVAL_MS; at the end answer with the
// total as an 8-byte big-endian number, close, and report it as an event.
async function handleSlow (stream, connection) {
  const start = Date.now()
  let total = 0
  await consume(stream, (bytes) => {
    total += bytes.length
    // pause until the allowance (SLOW_CHUNK per interval since start) covers what we read
    const due = start + Math.ceil(total / SLOW_CHUNK) * SLOW_INTERVAL_MS
    const wait = due - Date.now()
    if (wait > 0) return sleep(wait)
  })
  await write(stream, u64be(total))
  await stream.close()
  emit({ event: 'slow', peer_id: connection.remotePeer.toString(), bytes: total, ms: Date.now() - start })
}

function serve (handler) {
  return (stream, connection) => {
    handler(stream, connection).catch((err) => {
      emit({ event: 'handler_error', protocol: stream.protocol, peer_id: connection.remotePeer.toString(), error: errorText(err) })
      try { stream.abort(err) } catch {}
    })
  }
}

// ---- client side of the commands -----------------------------------------------------------

function target (cmd) {
  if (cmd.addr != null) return multiaddr(cmd.addr)
  if (cmd.peer_id != null) return peerIdFromString(cmd.peer_id)
  throw new Error('need "addr" or "peer_id"')
}

function count (cmd, name, dflt) {
  const v = cmd[name] ?? dflt
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`"${name}" must be a non-negative integer`)
  return v
}

async function openStream (node, cmd, protocol, signal) {
  return node.dialProtocol(target(cmd), protocol, {
    signal,
    maxOutboundStreams: MAX_STREAMS,
    negotiateFully: cmd.lazy !== true
  })
}

// Send n pattern bytes on an echo stream while reading the echo; returns the counts.
async function echoOnce (node, cmd, n, signal) {
  const stream = await openStream(node, cmd, ECHO, signal)
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
    const sent = await writePattern(stream, n, (chunk) => sentHash.update(chunk))
    await stream.close()
    await reading
    const a = sentHash.digest('hex')
    const b = recvHash.digest('hex')
    if (received !== sent || a !== b) {
      throw new Error(`echo mismatch: sent ${sent} bytes (sha256 ${a}), received ${received} (sha256 ${b})`)
    }
    return { sent, received }
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

async function withStream (node, cmd, protocol, signal, fn) {
  const stream = await openStream(node, cmd, protocol, signal)
  const onAbort = () => stream.abort(new Error('timed out'))
  signal.addEventListener('abort', onAbort)
  try {
    return await fn(stream)
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

const commands = {
  async dial (node, cmd, signal) {
    const conn = await node.dial(target(cmd), { signal })
    return { peer_id: conn.remotePeer.toString(), remote_addr: conn.remoteAddr.toString() }
  },

  async hangup (node, cmd, signal) {
    await node.hangUp(target(cmd), { signal })
    return {}
  },

  async ping (node, cmd, signal) {
    const n = count(cmd, 'count', 1)
    const rtts = []
    for (let i = 0; i < n; i++) rtts.push(await node.services.ping.ping(target(cmd), { signal }))
    return { rtts_ms: rtts }
  },

  async identify (node, cmd, signal) {
    const peerId = peerIdFromString(cmd.peer_id)
    let conn = node.getConnections(peerId).find((c) => c.status === 'open')
    if (conn == null) conn = await node.dial(peerId, { signal })
    const r = await node.services.identify.identify(conn, { signal })
    // the peer store now holds what identify learned; report from both
    const stored = await node.peerStore.get(peerId).catch(() => null)
    return {
      peer_id: r.peerId.toString(),
      protocols: r.protocols,
      listen_addrs: r.listenAddrs.map((a) => a.toString()),
      observed_addr: r.observedAddr?.toString() ?? null,
      agent: r.agentVersion ?? null,
      protocol_version: r.protocolVersion ?? null,
      signed_peer_record: r.signedPeerRecord != null,
      stored_protocols: stored?.protocols ?? [],
      stored_addrs: (stored?.addresses ?? []).map((a) => a.multiaddr.toString()),
      stored_signed_peer_record: stored?.peerRecordEnvelope != null
    }
  },

  async echo (node, cmd, signal) {
    const n = count(cmd, 'bytes', 0)
    const t0 = performance.now()
    const r = await echoOnce(node, cmd, n, signal)
    return { ...r, ms: Math.round(performance.now() - t0) }
  },

  async sink (node, cmd, signal) {
    const n = count(cmd, 'bytes', 0)
    const t0 = performance.now()
    return withStream(node, cmd, SINK, signal, async (stream) => {
      const h = createHash('sha256')
      const reply = []
      const reading = consume(stream, (bytes) => { reply.push(bytes) })
      const sent = await writePattern(stream, n, (chunk) => h.update(chunk))
      await stream.close()
      await reading
      const got = Buffer.concat(reply)
      const want = h.digest()
      if (!got.equals(want)) {
        throw new Error(`sink digest mismatch: want ${want.toString('hex')}, got ${got.toString('hex')} (${got.length} bytes)`)
      }
      return { sent, sha256: want.toString('hex'), ms: Math.round(performance.now() - t0) }
    })
  },

  async source (node, cmd, signal) {
    const n = count(cmd, 'bytes', 0)
    const t0 = performance.now()
    return withStream(node, cmd, SOURCE, signal, async (stream) => {
      const check = new PatternChecker()
      const reading = consume(stream, (bytes) => check.update(bytes))
      await write(stream, u64be(n))
      await stream.close()
      await reading
      if (check.firstBad >= 0) throw new Error(`source data differs from the pattern at byte ${check.firstBad}`)
      if (check.offset !== n) throw new Error(`source sent ${check.offset} bytes, asked for ${n}`)
      return { received: n, ms: Math.round(performance.now() - t0) }
    })
  },

  async slow (node, cmd, signal) {
    const n = count(cmd, 'bytes', 0)
    const t0 = performance.now()
    return withStream(node, cmd, SLOW, signal, async (stream) => {
      const reply = []
      const reading = consume(stream, (bytes) => { reply.push(bytes) })
      const sent = await writePattern(stream, n)
      await stream.close()
      await reading
      const got = Buffer.concat(reply)
      if (got.length !== 8) throw new Error(`slow: expected an 8-byte count, got ${got.length} bytes`)
      const counted = readU64be(got)
      if (counted !== sent) throw new Error(`slow: sent ${sent} bytes, peer counted ${counted}`)
      return { sent, counted, ms: Math.round(performance.now() - t0) }
    })
  },

  async streams (node, cmd, signal) {
    const n = count(cmd, 'count', 1)
    const bytes = count(cmd, 'bytes', 1024)
    const t0 = performance.now()
    const results = await Promise.allSettled(Array.from({ length: n }, () => echoOnce(node, cmd, bytes, signal)))
    const failed = results.filter((r) => r.status === 'rejected')
    if (failed.length > 0) {
      throw new Error(`${failed.length} of ${n} streams failed; first: ${errorText(failed[0].reason)}`)
    }
    return { count: n, bytes, ms: Math.round(performance.now() - t0) }
  },

  async peers (node) {
    return {
      connections: node.getConnections().map((c) => ({
        peer_id: c.remotePeer.toString(),
        direction: c.direction,
        remote_addr: c.remoteAddr.toString(),
        status: c.status,
        streams: c.streams.length
      }))
    }
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

// ---- main -----------------------------------------------------------------------------------

function parseArgs (argv) {
  const opts = { listen: [], key: null, agent: null }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`)
      return argv[++i]
    }
    if (a === '--listen') opts.listen.push(val())
    else if (a === '--key') opts.key = val()
    else if (a === '--agent') opts.agent = val()
    else if (a === '--help' || a === '-h') {
      process.stderr.write('usage: node --import ./polyfill.mjs js-peer.mjs [--listen MA]... [--key HEX] [--agent STR]\n')
      process.exit(0)
    } else throw new Error(`unknown argument ${a}`)
  }
  return opts
}

async function main () {
  const opts = parseArgs(process.argv.slice(2))
  const config = {
    addresses: { listen: opts.listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ maxInboundStreams: MAX_STREAMS * 2, maxOutboundStreams: MAX_STREAMS * 2 })],
    // the default gater refuses to dial private and loopback addresses
    connectionGater: { denyDialMultiaddr: () => false },
    connectionManager: {
      maxConnections: 1000,
      inboundConnectionThreshold: 1000,
      maxIncomingPendingConnections: 100
    },
    services: {
      identify: identify({ maxInboundStreams: 8, maxOutboundStreams: 8 }),
      ping: ping()
    }
  }
  if (opts.agent != null) config.nodeInfo = { userAgent: opts.agent }
  if (opts.key != null) config.privateKey = privateKeyFromProtobuf(Buffer.from(opts.key, 'hex'))

  const node = await createLibp2p(config)

  node.addEventListener('connection:open', (evt) => {
    const c = evt.detail
    emit({ event: 'connection', state: 'open', peer_id: c.remotePeer.toString(), direction: c.direction, remote_addr: c.remoteAddr.toString() })
  })
  node.addEventListener('connection:close', (evt) => {
    const c = evt.detail
    emit({ event: 'connection', state: 'closed', peer_id: c.remotePeer.toString(), direction: c.direction, remote_addr: c.remoteAddr.toString() })
  })

  const handlerOpts = { maxInboundStreams: MAX_STREAMS, maxOutboundStreams: MAX_STREAMS }
  await node.handle(ECHO, serve(handleEcho), handlerOpts)
  await node.handle(SINK, serve(handleSink), handlerOpts)
  await node.handle(SOURCE, serve(handleSource), handlerOpts)
  await node.handle(SLOW, serve(handleSlow), handlerOpts)

  await node.start()
  emit({ event: 'listening', peer_id: node.peerId.toString(), addrs: node.getMultiaddrs().map((a) => a.toString()) })

  let stopping = false
  const stop = async (code) => {
    if (stopping) return
    stopping = true
    try {
      await node.stop()
    } catch (err) {
      emit({ event: 'error', where: 'stop', error: errorText(err) })
      code = 1
    }
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
  // stdin closed: finish the commands in flight, then stop
  rl.on('close', async () => {
    await Promise.allSettled([...running])
    stop(0)
  })
}

main().catch((err) => fatal('startup', err))
