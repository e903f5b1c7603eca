// Generates tests/data/js-keys.json: keys, peer IDs and signatures made by js-libp2p's
// @libp2p/crypto, read by the C identity tests to check that both sides agree.
//
// Usage: node --import ./polyfill.mjs gen-js-keys.mjs [output-path]
// The output is random (fresh keys each run); the committed file is the reference.
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateKeyPair, privateKeyToProtobuf, publicKeyToProtobuf, publicKeyFromProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'

const here = dirname(fileURLToPath(import.meta.url))
const outPath = process.argv[2] ?? join(here, '..', 'data', 'js-keys.json')

const message = new TextEncoder().encode('Libp2p is the _best_!')
const hex = (bytes) => Buffer.from(bytes).toString('hex')

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
function base58btc (bytes) {
  let n = BigInt('0x' + (hex(bytes) || '0'))
  let out = ''
  while (n > 0n) {
    out = B58[Number(n % 58n)] + out
    n /= 58n
  }
  for (const b of bytes) {
    if (b !== 0) break
    out = '1' + out
  }
  return out
}

// Peer ID per the libp2p peer-id spec: identity multihash of the protobuf public key when it
// is at most 42 bytes, SHA-256 multihash otherwise.
function specPeerIdBytes (publicPb) {
  if (publicPb.length <= 42) return Uint8Array.from([0x00, publicPb.length, ...publicPb])
  return Uint8Array.from([0x12, 0x20, ...createHash('sha256').update(publicPb).digest()])
}

async function entry (privateKey, withPrivate) {
  const publicPb = publicKeyToProtobuf(privateKey.publicKey)
  const specId = base58btc(specPeerIdBytes(publicPb))
  let peerId
  if (privateKey.type === 'ECDSA') {
    // @libp2p/peer-id has no ECDSA support (and the key's own toMultihash() always inlines
    // the key, against the 42-byte rule). Use the spec's ID, which go-libp2p also derives.
    peerId = peerIdFromString(specId)
  } else {
    peerId = peerIdFromPrivateKey(privateKey)
    if (peerId.toString() !== specId) throw new Error(`${privateKey.type}: js peer id ${peerId} != spec ${specId}`)
  }
  const sig = await privateKey.sign(message)

  // Self-checks, so a broken file is never written.
  const reparsed = publicKeyFromProtobuf(publicPb)
  if (!(await reparsed.verify(message, sig))) throw new Error(`${privateKey.type}: signature does not verify`)
  if (!peerIdFromString(peerId.toString()).equals(peerId)) throw new Error(`${privateKey.type}: peer id round trip`)

  const out = {}
  if (withPrivate) out.private_pb_hex = hex(privateKeyToProtobuf(privateKey))
  out.public_pb_hex = hex(publicPb)
  out.peer_id = peerId.toString()
  if (withPrivate) out.peer_id_cid = peerId.toCID().toString()
  out.sig_hex = hex(sig)
  return out
}

async function many (n, make, withPrivate) {
  const list = []
  for (let i = 0; i < n; i++) list.push(await entry(await make(), withPrivate))
  return list
}

const doc = {
  message_hex: hex(message),
  ed25519: await many(3, () => generateKeyPair('Ed25519'), true),
  secp256k1: await many(2, () => generateKeyPair('secp256k1'), false),
  ecdsa: await many(2, () => generateKeyPair('ECDSA', 'P-256'), false),
  rsa: await many(1, () => generateKeyPair('RSA', 2048), false)
}

writeFileSync(outPath, JSON.stringify(doc, null, 2) + '\n')
console.log(`wrote ${outPath}`)
