// Starts js-peer.mjs as a child process and talks to it over its JSON-lines stdin/stdout.
// Used by selftest.mjs; handy for js<->js runs (benchmarks) as well.
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))

export class PeerProcess {
  // opts.wrapper: start through js-peer.sh (as the C tests do) instead of node directly
  constructor (name, args = [], opts = {}) {
    this.name = name
    this.args = args
    this.wrapper = opts.wrapper === true
    this.nextId = 1
    this.waiting = new Map()
    this.events = []
    this.exited = null
  }

  // Resolves with the 'listening' event.
  start (timeoutMs = 30_000) {
    const [cmd, argv] = this.wrapper
      ? [join(here, 'js-peer.sh'), this.args]
      : [process.execPath, ['--import', join(here, 'polyfill.mjs'), join(here, 'js-peer.mjs'), ...this.args]]
    this.child = spawn(cmd, argv, {
      cwd: here,
      stdio: ['pipe', 'pipe', 'pipe']
    })
    this.stderr = ''
    this.child.stderr.on('data', (d) => { this.stderr += d.toString() })
    const rl = createInterface({ input: this.child.stdout, crlfDelay: Infinity })
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no 'listening' within ${timeoutMs} ms`)), timeoutMs)
      rl.on('line', (line) => {
        let msg
        try {
          msg = JSON.parse(line)
        } catch {
          this.events.push({ event: 'garbage', line })
          return
        }
        if (msg.event === 'listening') {
          clearTimeout(timer)
          this.info = msg
          resolve(msg)
        } else if (msg.event != null) {
          this.events.push(msg)
          if (msg.fatal) reject(new Error(`${this.name}: ${msg.error}`))
        } else {
          const w = this.waiting.get(msg.id)
          if (w != null) {
            this.waiting.delete(msg.id)
            w(msg)
          } else {
            this.events.push({ event: 'unexpected_reply', msg })
          }
        }
      })
      this.child.on('exit', (code, signal) => {
        clearTimeout(timer)
        this.exited = { code, signal }
        const err = { ok: false, error: `${this.name} exited (code ${code}, signal ${signal})` }
        for (const w of this.waiting.values()) w(err)
        this.waiting.clear()
        reject(new Error(`${this.name} exited before listening: ${this.stderr.trim()}`))
      })
    })
  }

  // Resolves with the first event (already seen or still to come) matching pred, or null
  // after timeoutMs.
  async waitEvent (pred, timeoutMs = 5000) {
    const end = Date.now() + timeoutMs
    for (;;) {
      const e = this.events.find(pred)
      if (e != null) return e
      if (Date.now() >= end || this.exited != null) return null
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  // Sends one command; resolves with its reply (never rejects).
  cmd (obj) {
    if (this.exited != null) return Promise.resolve({ ok: false, error: `${this.name} has exited` })
    const id = this.nextId++
    return new Promise((resolve) => {
      this.waiting.set(id, resolve)
      this.child.stdin.write(JSON.stringify({ ...obj, id }) + '\n')
    })
  }

  async stop (timeoutMs = 10_000) {
    if (this.exited != null) return this.exited
    const done = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })))
    this.child.stdin.write(JSON.stringify({ cmd: 'exit' }) + '\n')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs)
    const r = await done
    clearTimeout(timer)
    return r
  }
}
