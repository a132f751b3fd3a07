#!/usr/bin/env node
// hyperlog 4.12.1 (in memory) as a replication peer for strata's interoperability tests.
//
//   node peer.js serve   [options]   listen on 127.0.0.1 (port printed as {"port":P}), one peer
//   node peer.js connect PORT [options]
//
// Options:
//   --id ID          this log's id
//   --nodes N        fill this log with an N-node chain first
//   --cross          first replicate an N-node chain of log "js-a" in, and make each of this
//                    log's nodes link to the matching "js-a" node as well (cross-log links, so
//                    hyperlog sends nodes before their links: spec §3.5)
//   --mode M         sync | push | pull
//   --live           live replication; with --expect T, ends once it holds T nodes
//   --add K          in live mode, append K nodes once the session is live
//   --timeout S      exit with an error after S seconds (default 120)
//
// When the session ends it prints {"nodes":N,"heads":[...]} (keys sorted) and exits 0.
var net = require('net')
var hyperlog = require('hyperlog')
var levelup = require('levelup')
var encode = require('encoding-down')
var memdown = require('memdown')

var args = process.argv.slice(2)
function opt (name, def) {
  var i = args.indexOf('--' + name)
  if (i === -1) return def
  var v = args[i + 1]
  args.splice(i, 2)
  return v
}
function flag (name) {
  var i = args.indexOf('--' + name)
  if (i === -1) return false
  args.splice(i, 1)
  return true
}

var id = opt('id', 'js')
var n = Number(opt('nodes', 0))
var mode = opt('mode', undefined)
var expect = Number(opt('expect', 0))
var add = Number(opt('add', 0))
var timeout = Number(opt('timeout', 120))
var cross = flag('cross')
var live = flag('live')
var cmd = args.shift()

setTimeout(function () {
  console.error('peer.js: timeout after ' + timeout + 's')
  process.exit(2)
}, timeout * 1000).unref()

function open (logId) {
  return hyperlog(levelup(encode(memdown())), {id: logId, valueEncoding: 'binary'})
}

function fill (log, count, linksFor, cb) {
  var prev = null
  var i = 0
  ;(function next () {
    if (i === count) return cb()
    var links = (prev ? [prev] : []).concat(linksFor(i))
    log.add(links, log.id + ' ' + i++, function (err, node) {
      if (err) return cb(err)
      prev = node.key
      next()
    })
  })()
}

function fail (err) {
  console.error('peer.js:', err && err.stack ? err.stack : err)
  process.exit(1)
}

// Counts stored nodes (hyperlog's change counter also counts a node received again).
function count (log, cb) {
  var nodes = 0
  log.db.createKeyStream({gt: '!nodes!', lt: '!nodes!~'})
    .on('data', function () { nodes++ })
    .on('error', cb)
    .on('end', function () { cb(null, nodes) })
}

function stats (log, cb) {
  log.heads(function (err, heads) {
    if (err) return cb(err)
    count(log, function (err, nodes) {
      if (err) return cb(err)
      cb(null, {nodes: nodes, heads: heads.map(function (h) { return h.key }).sort()})
    })
  })
}

function prepare (cb) {
  var log = open(id)
  if (!cross) return fill(log, n, function () { return [] }, function (err) { cb(err, log) })
  var a = open('js-a')
  var aKeys = []
  fill(a, n, function () { return [] }, function (err) {
    if (err) return cb(err)
    a.createReadStream().on('data', function (node) { aKeys.push(node.key) }).on('end', function () {
      var s1 = a.replicate()
      var s2 = log.replicate()
      s1.pipe(s2).pipe(s1)
      s2.on('end', function () {
        fill(log, n, function (i) { return [aKeys[i]] }, function (err) { cb(err, log) })
      })
    })
  })
}

function replicate (sock, log) {
  var stream = log.replicate({mode: mode, live: live})
  var finished = false
  function finish () {
    if (finished) return
    finished = true
    stats(log, function (err, st) {
      if (err) return fail(err)
      console.log(JSON.stringify(st))
      sock.end()
      setTimeout(function () { process.exit(0) }, 200)
    })
  }
  stream.on('error', fail)
  sock.on('error', function (err) { if (!finished) fail(err) })
  if (live) {
    stream.on('live', function () {
      var i = 0
      ;(function next () {
        if (i++ === add) return
        log.append('js live ' + i, function (err) {
          if (err) return fail(err)
          setTimeout(next, 5)
        })
      })()
    })
    var poll = setInterval(function () {
      count(log, function (err, nodes) {
        if (err) return fail(err)
        if (nodes >= expect) {
          clearInterval(poll)
          finish()
        }
      })
    }, 100)
  } else {
    stream.on('end', finish)
  }
  sock.pipe(stream).pipe(sock)
}

prepare(function (err, log) {
  if (err) return fail(err)
  if (cmd === 'serve') {
    var server = net.createServer({allowHalfOpen: true}, function (sock) {
      server.close()
      replicate(sock, log)
    })
    server.listen(0, '127.0.0.1', function () {
      console.log(JSON.stringify({port: server.address().port}))
    })
  } else if (cmd === 'connect') {
    var sock = net.connect({port: Number(args[0]), host: '127.0.0.1', allowHalfOpen: true}, function () {
      replicate(sock, log)
    })
    sock.on('error', fail)
  } else {
    fail('usage: peer.js serve|connect [PORT] [options]')
  }
})
