// A js-libp2p node that speaks the Goop2 site and data protocols, written from the
// protocol description alone, to pin libgoop's wire format independently of its own code.
//
//   node --import ./polyfill.mjs js-goop.mjs --listen /ip4/127.0.0.1/tcp/0
//
// Same JSON-lines interface as js-peer.mjs (first line {"event":"listening",...}, one
// command per stdin line, one reply per command). As a SERVER it serves
//   /goop/site/1.0.0  "GET <path>\n" -> "OK text/plain; charset=utf-8 <size>\n" + bytes for
//                     /hello.txt, "ERR not found\n" for anything else, "ERR bad request\n"
//                     for a line not starting with "GET "
//   /goop/data/1.0.0  one JSON line in -> {"ok":true,"data":{"echo":<op>,"fixed":42}}\n
// Commands (CLIENT of another peer, "addr" ends in /p2p/<id>):
//   {"cmd":"site_get","addr":A,"path":P}  -> {"header":"OK ...","mime":M,"size":N,
//                                             "received":N,"sha256":hex,"text":first 4 KiB of text/*}
//   {"cmd":"data","addr":A,"request":JSON-text} -> {"response":line without newline}
//   {"cmd":"last_data_request"}            -> {"request":text or null,"peer_id":caller}
//   {"cmd":"exit"}
import { createHash } from 'node:crypto'
import { createInterface } from 'node:readline'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

const SITE = '/goop/site/1.0.0'
const DATA = '/goop/data/1.0.0'
const HELLO = new TextEncoder().encode('hello from js-libp2p\n')
const MAX_LINE = 1 << 20

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const errorText = (err) => (err == null ? 'unknown error' : (err.message ?? String(err)))
process.on('unhandledRejection', (err) => { emit({ event: 'error', fatal: true, error: errorText(err) }); process.exit(1) })

const bytesOf = (data) => (data instanceof Uint8Array ? data : data.subarray())

async function send (stream, bytes) {
  if (!stream.send(bytes)) await stream.onDrain()
}

// Collects the whole inbound side of a stream (until the remote closes its write side),
// or only up to the first newline when untilNewline is set. Resolves with a Buffer.
function collect (stream, { untilNewline = false, max = 64 << 20 } = {}) {
  return new Promise((resolve, reject) => {
    const parts = []
    let len = 0
    let done = false
    const finish = (err) => {
      if (done) return
      done = true
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('close', onClose)
      stream.removeEventListener('end', onEnd)
      if (err != null) reject(err)
      else resolve(Buffer.concat(parts, len))
    }
    const onMessage = (evt) => {
      const b = bytesOf(evt.data)
      parts.push(Buffer.from(b))
      len += b.length
      if (len > max) finish(new Error('too much data'))
      else if (untilNewline && b.includes(10)) finish()
    }
    const onEnd = () => finish()
    const onClose = (evt) => finish(evt.error)
    stream.addEventListener('message', onMessage)
    stream.addEventListener('end', onEnd)
    stream.addEventListener('close', onClose)
    if (stream.readableEnded) finish()
  })
}

// ---- servers ----
let lastData = null

async function serveSite (stream) {
  const buf = await collect(stream, { untilNewline: true, max: 8192 })
  const nl = buf.indexOf(10)
  const line = buf.subarray(0, nl < 0 ? buf.length : nl).toString('utf8').trim()
  let answer
  if (!line.startsWith('GET ')) {
    answer = [Buffer.from('ERR bad request\n')]
  } else {
    let path = line.slice(4).trim()
    if (path === '' || path === '/') path = '/index.html'
    answer = path === '/hello.txt'
      ? [Buffer.from(`OK text/plain; charset=utf-8 ${HELLO.length}\n`), HELLO]
      : [Buffer.from('ERR not found\n')]
  }
  for (const part of answer) await send(stream, part)
  await stream.close()
}

async function serveData (stream, connection) {
  const buf = await collect(stream, { untilNewline: true, max: MAX_LINE })
  const nl = buf.indexOf(10)
  const text = buf.subarray(0, nl < 0 ? buf.length : nl).toString('utf8')
  lastData = { request: text, peer_id: connection.remotePeer.toString() }
  let reply
  try {
    const req = JSON.parse(text)
    reply = { ok: true, data: { echo: req.op ?? null, fixed: 42 } }
  } catch (err) {
    reply = { ok: false, error: `invalid json: ${errorText(err)}` }
  }
  await send(stream, Buffer.from(JSON.stringify(reply) + '\n'))
  await stream.close()
}

const serve = (fn) => (stream, connection) => {
  fn(stream, connection).catch((err) => {
    emit({ event: 'handler_error', protocol: stream.protocol, error: errorText(err) })
    try { stream.abort(err) } catch {}
  })
}

// ---- clients ----
async function siteGet (node, cmd) {
  const stream = await node.dialProtocol(multiaddr(cmd.addr), SITE)
  const reading = collect(stream, { max: 64 << 20 })
  await send(stream, Buffer.from(`GET ${cmd.path}\n`))
  await stream.close()
  const all = await reading
  const nl = all.indexOf(10)
  if (nl < 0) throw new Error('no header line')
  const header = all.subarray(0, nl).toString('utf8')
  const body = all.subarray(nl + 1)
  const out = { header, received: body.length }
  if (header.startsWith('OK ')) {
    const sp = header.lastIndexOf(' ')
    out.mime = header.slice(3, sp)
    out.size = Number(header.slice(sp + 1))
    out.sha256 = createHash('sha256').update(body).digest('hex')
    if (out.mime.startsWith('text/')) out.text = body.subarray(0, 4096).toString('utf8')
  }
  return out
}

async function dataRequest (node, cmd) {
  const stream = await node.dialProtocol(multiaddr(cmd.addr), DATA)
  const reading = collect(stream, { max: 16 << 20 })
  await send(stream, Buffer.from(cmd.request + '\n'))
  await stream.close()
  const all = await reading
  const nl = all.indexOf(10)
  if (nl < 0) throw new Error('no newline after the response')
  if (nl !== all.length - 1) throw new Error('bytes after the response line')
  return { response: all.subarray(0, nl).toString('utf8') }
}

const commands = {
  site_get: siteGet,
  data: dataRequest,
  last_data_request: async () => ({ request: lastData?.request ?? null, peer_id: lastData?.peer_id ?? null })
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
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    services: { identify: identify(), ping: ping() }
  })
  await node.handle(SITE, serve(serveSite))
  await node.handle(DATA, serve(serveData))
  await node.start()
  emit({ event: 'listening', peer_id: node.peerId.toString(), addrs: node.getMultiaddrs().map((a) => a.toString()) })

  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity })
  const stop = async () => {
    try { await node.stop() } catch {}
    process.exit(0)
  }
  rl.on('line', async (line) => {
    if (line.trim() === '') return
    let cmd
    try {
      cmd = JSON.parse(line)
    } catch (err) {
      emit({ id: null, ok: false, error: `bad command line: ${errorText(err)}` })
      return
    }
    const id = cmd.id ?? null
    if (cmd.cmd === 'exit') {
      emit({ id, ok: true })
      await stop()
      return
    }
    const fn = commands[cmd.cmd]
    if (fn == null) {
      emit({ id, ok: false, error: `unknown command ${cmd.cmd}` })
      return
    }
    try {
      emit({ id, ok: true, ...(await fn(node, cmd)) })
    } catch (err) {
      emit({ id, ok: false, error: errorText(err) })
    }
  })
  rl.on('close', stop)
}

main().catch((err) => { emit({ event: 'error', fatal: true, where: 'startup', error: errorText(err) }); process.exit(1) })
