#!/usr/bin/python3
# The lab's webhook receiver: a real HTTP server on loopback that stores each POST it gets, as Slack, Teams or
# Mattermost would receive it. POST /hook -> 200 and the body appended (one JSON line) to <folder>/received.jsonl;
# POST /fail -> 500 (a sink that fails); POST /slow -> no answer for 60 s (a sink that hangs).
import json, os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, folder = int(sys.argv[1]), sys.argv[2]
os.makedirs(folder, exist_ok=True)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        if self.path.startswith('/slow'):
            time.sleep(60)
        if self.path.startswith('/fail'):
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b'receiver: told to fail')
            return
        record = {'path': self.path, 'contentType': self.headers.get('Content-Type'), 'body': body.decode('utf-8', 'replace')}
        with open(os.path.join(folder, 'received.jsonl'), 'a', encoding='utf-8') as f:
            f.write(json.dumps(record) + '\n')
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.end_headers()
        self.wfile.write(b'ok')

    def log_message(self, fmt, *args):
        pass


ThreadingHTTPServer(('127.0.0.1', port), Handler).serve_forever()
