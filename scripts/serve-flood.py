#!/usr/bin/env python3
"""The reviewer's flood against `gigascale serve`: FLOODERS processes each open CONNS
connections that send half a request's headers and then nothing, while the token holder
lists jobs and runs a job. Prints the authorised requests' statuses and latencies, the
job's fate, how many flood connections the server had closed, and the server's peak RSS.
  scripts/serve-flood.py [BIN] (env: CONNS=10000 FLOODERS=2 BUDGET=256M)
"""
import json, os, socket, subprocess, sys, tempfile, time, urllib.request
from multiprocessing import Process

bin_ = sys.argv[1] if len(sys.argv) > 1 else 'target/release/gigascale'
conns, flooders, budget = int(os.environ.get('CONNS', 10000)), int(os.environ.get('FLOODERS', 2)), os.environ.get('BUDGET', '256M')
work = tempfile.mkdtemp()
srv = subprocess.Popen([bin_, 'serve', '--listen', '127.0.0.1:0', '--work-dir', work, '--max-memory', budget],
                       stdout=subprocess.PIPE, text=True)
url = srv.stdout.readline().strip()
base, token = url.split('/?token=')
host = base[len('http://'):]
addr = (host.split(':')[0], int(host.split(':')[1]))

def flood(n, hold):
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection(addr, timeout=2)
            s.sendall(f'GET /api/jobs HTTP/1.1\r\nHost: {host}\r\nX-Slow: '.encode())
            socks.append(s)
        except OSError:
            time.sleep(0.001)
    time.sleep(hold)
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            closed += s.recv(1) == b''
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    print(f'flooder: {len(socks)} opened, {closed} closed by the server after {hold} s', flush=True)

def call(method, path, body=None, ctype=None):
    req = urllib.request.Request(base + path, data=body, method=method, headers={'Authorization': f'Bearer {token}'})
    if ctype: req.add_header('Content-Type', ctype)
    t = time.time()
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), time.time() - t
    except urllib.error.HTTPError as e:
        return e.code, e.read(), time.time() - t

procs = [Process(target=flood, args=(conns, 15)) for _ in range(flooders)]
[p.start() for p in procs]
time.sleep(3)
lat = []
for _ in range(10):
    st, _, dt = call('GET', '/api/jobs'); lat.append((st, round(dt, 3)))
print('authorised GET /api/jobs during the flood:', lat, flush=True)
from PIL import Image
im = Image.radial_gradient('L').resize((300, 200)).convert('RGB'); p = os.path.join(work, 'in.png'); im.save(p)
st, body, _ = call('POST', '/api/uploads?name=in.png', open(p, 'rb').read())
up = json.loads(body)['id'] if st == 201 else None
st2, body2, _ = call('POST', '/api/jobs', json.dumps({'upload': up, 'scale': 8}).encode(), 'application/json')
job = json.loads(body2).get('id')
print('upload', st, 'job', st2, flush=True)
for _ in range(600):
    s, b, _ = call('GET', f'/api/jobs/{job}')
    if json.loads(b)['state'] in ('done', 'failed'): break
    time.sleep(0.1)
print('job:', json.loads(b)['state'], 'result', call('GET', f'/api/jobs/{job}/result')[0], flush=True)
[p.join() for p in procs]
hwm = [l for l in open(f'/proc/{srv.pid}/status') if l.startswith('VmHWM')][0].split()[1]
fds = len(os.listdir(f'/proc/{srv.pid}/fd'))
print(f'server VmHWM {int(hwm) // 1024} MiB (budget {budget}); open descriptors now {fds}', flush=True)
srv.terminate(); srv.wait(10)
srv = subprocess.Popen([bin_, 'serve', '--listen', '127.0.0.1:0', '--work-dir', work], stdout=subprocess.PIPE, text=True)
base, token = srv.stdout.readline().strip().split('/?token=')
print('after a restart the job is', json.loads(call('GET', f'/api/jobs/{job}')[1])['state'])
srv.terminate(); srv.wait(10)
