#!/usr/bin/python3
"""runs_reference.py: bench/runs.sh's reference pipeline, shaped like the
system assetd's CSV runs replace (promise-pub and its consumer promise-sub,
issue #13), and its helper for the amqplib reference.

  runs_reference.py consume URL QUEUE DB N   declare QUEUE, print "ready",
        store N messages one INSERT + one commit each, print a JSON line
        {"first": t, "last": t, "stored": n}, delete QUEUE
  runs_reference.py publish URL QUEUE CSV    one basic_publish per row, no
        confirms, not persistent; prints {"start": t, "end": t, "rows": n}
  runs_reference.py bodies CSV OUT           the rows' message bodies, one
        JSON line each (for bench/runs_amqplib.mjs)

Times are time.time() (CLOCK_REALTIME, the clock assetd stamps its runs
with).  Debian's python3-pika (1.2) is what is installed; the original ran
pika 0.12 the same way: a BlockingConnection and basic_publish per row,
delivery_mode unset (transient), into a non-durable queue.

The consumer stands in for promise-sub, which stored each message with one
INSERT into PostgreSQL in autocommit (one WAL flush per row).  Here SQLite
in WAL mode with synchronous=FULL, assetd's own settings, commits once per
message: one fsync per row, as PostgreSQL's autocommit does, on the same
disk as assetd's database.  E-mails are unique (first row wins), as in the
original table.  Each message is acked after its commit (pika's default
manual ack), so nothing is lost that was not stored.
"""
import csv
import json
import sqlite3
import sys
import time

import pika


def consume(url, queue, db_path, n):
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS people (email TEXT PRIMARY KEY, name TEXT NOT NULL)")
    db.commit()
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.queue_declare(queue=queue)
    state = {"count": 0, "first": None, "last": None}

    def on_message(chan, method, _props, body):
        msg = json.loads(body)
        db.execute("INSERT INTO people (email, name) VALUES (?, ?) ON CONFLICT (email) DO NOTHING",
                   (msg["mail"], msg["name"]))
        db.commit()
        chan.basic_ack(delivery_tag=method.delivery_tag)
        state["count"] += 1
        if state["first"] is None:
            state["first"] = time.time()
        if state["count"] >= n:
            state["last"] = time.time()
            chan.stop_consuming()

    ch.basic_consume(queue=queue, on_message_callback=on_message)
    print("ready", flush=True)
    ch.start_consuming()
    saved = db.execute("SELECT count(*) FROM people").fetchone()[0]
    ch.queue_delete(queue=queue)
    conn.close()
    db.close()
    print(json.dumps({"first": state["first"], "last": state["last"],
                      "stored": state["count"], "saved": saved}), flush=True)


def rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if len(row) == 2:
                yield row


def publish(url, queue, path):
    start = time.time()
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    n = 0
    for name, mail in rows(path):
        ch.basic_publish(exchange="", routing_key=queue,
                         body=json.dumps({"name": name, "mail": mail}))
        n += 1
    conn.close()
    print(json.dumps({"start": start, "end": time.time(), "rows": n}), flush=True)


def bodies(path, out):
    with open(out, "w", encoding="utf-8") as f:
        for name, mail in rows(path):
            f.write(json.dumps({"name": name, "mail": mail}) + "\n")


def main(argv):
    if len(argv) == 6 and argv[1] == "consume":
        consume(argv[2], argv[3], argv[4], int(argv[5]))
    elif len(argv) == 5 and argv[1] == "publish":
        publish(argv[2], argv[3], argv[4])
    elif len(argv) == 4 and argv[1] == "bodies":
        bodies(argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
