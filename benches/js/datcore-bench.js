#!/usr/bin/env node
// dat-core@6.0.2 row import and point gets, for `cargo bench --bench compare`.
//
//   node datcore-bench.js [N [BATCH [GETS]]]      (defaults 100000 10000 10000)
//
// Runs from the jspeers install (`target/jspeers`, where compare.rs copies it): it needs
// dat-core's node_modules there and jspeers' `lib/patch-datcore.js` (dat-core on Node 20).
// Writes N rows `row-00000000`.. with ~100-byte JSON values, as strata's import in the
// harness does, in dat.batch() calls of BATCH rows (one commit each), to a fresh on-disk
// dat (leveldown@5.6.0, jspeers' override); then gets GETS random rows at the latest
// version. Prints one JSON line with rows_per_sec and gets_per_sec.
var fs = require('fs')
var path = require('path')
require('./lib/patch-datcore')
var dat = require('dat-core')

var args = process.argv.slice(2).map(Number)
var N = args[0] || 100000
var batchSize = args[1] || 10000
var gets = args[2] || 10000
var dir = path.join(__dirname, 'tmp', 'datcore-bench-' + process.pid + '-' + Date.now())
fs.mkdirSync(dir, {recursive: true})

// The value compare.rs and bench-add.js write: ~100 bytes of JSON.
function value (i) {
  var s = JSON.stringify({i: i, type: 'bench', ts: 1700000000000 + i, pad: ''})
  return JSON.stringify({i: i, type: 'bench', ts: 1700000000000 + i, pad: 'x'.repeat(Math.max(0, 100 - s.length))})
}
function key (i) { return 'row-' + String(i).padStart(8, '0') }

var db = dat(dir, {valueEncoding: 'utf-8', multiprocess: false})
db.once('error', function (err) { throw err })
db.once('ready', function () {
  var started = Date.now()
  var written = 0
  ;(function nextBatch () {
    if (written >= N) return imported(Date.now() - started)
    var ops = []
    for (var i = written; i < Math.min(N, written + batchSize); i++) ops.push({type: 'put', key: key(i), value: value(i)})
    written += ops.length
    db.batch(ops, function (err) {
      if (err) throw err
      nextBatch()
    })
  })()
})

function imported (importMs) {
  var started = Date.now()
  var done = 0
  var x = 0
  ;(function nextGet () {
    if (done === gets) return finish(importMs, Date.now() - started)
    x = (x + 7919) % N
    var want = value(x)
    db.get(key(x), function (err, row) {
      if (err) throw err
      if (row.value !== want) throw new Error('get ' + key(x) + ' returned ' + JSON.stringify(row.value))
      done++
      nextGet()
    })
  })()
}

function finish (importMs, getMs) {
  console.log(JSON.stringify({
    impl: 'dat-core@6.0.2 (leveldown@5.6.0 on disk)',
    rows: N,
    batch: batchSize,
    import_ms: importMs,
    rows_per_sec: Math.round(N / (importMs / 1000)),
    gets: gets,
    get_ms: getMs,
    gets_per_sec: Math.round(gets / (getMs / 1000)),
    node: process.version
  }))
  db.close(function () {
    fs.rmSync(dir, {recursive: true, force: true})
  })
}
