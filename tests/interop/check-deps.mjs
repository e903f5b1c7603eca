// Imports every pinned dependency and reports which ones load.
// Usage: node --import ./polyfill.mjs check-deps.mjs   (exit status 1 if any import fails)
const modules = [
  'libp2p', '@libp2p/tcp', '@chainsafe/libp2p-noise', '@chainsafe/libp2p-yamux',
  '@libp2p/identify', '@libp2p/ping', '@libp2p/crypto', '@libp2p/crypto/keys',
  '@libp2p/peer-id', '@multiformats/multiaddr', '@libp2p/gossipsub',
  '@libp2p/circuit-relay-v2', '@libp2p/dcutr', 'playwright-core'
]
let failed = 0
for (const name of modules) {
  try {
    await import(name)
    console.log(`ok ${name}`)
  } catch (err) {
    failed++
    console.log(`FAIL ${name}: ${err.message}`)
  }
}
console.log(`${modules.length - failed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
