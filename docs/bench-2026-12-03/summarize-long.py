# Summarizes a directory written by aeron-rounds-long.sh: per round, the 64 B stream with 32 MiB
# rings (shm, c-ring) against Aeron's checked and raw streams, and the spinning 64 B round trip
# (shm, c-spin, c-ring) against Aeron's cping/cpong; F/s = fast/slow host mode (ringbench: both
# probes under 120 ns; Aeron, which has no probe: p50 under 400 ns). Ratios: medians of per-round
# ratios, round trips only over rounds where both sides ran in the fast mode.
#   python3 docs/bench-2026-12-03/summarize-long.py docs/bench-2026-12-03/rounds-long
import json,re,sys,statistics as st,glob
d=sys.argv[1]
def res(f): return json.load(open(f))['results']
def g(rs,name,size,key):
    for x in rs:
        if (x['transport']==name or x['transport'].startswith(name+'/')) and x['size']==size: return x[key], x.get('probe_ns'), x.get('probe_after_ns')
rows=[]
n=len(glob.glob(f'{d}/aeron-*.txt'))
for r in range(1,n+1):
    try:
        b=res(f'{d}/thrbig64-{r}.json'); l=res(f'{d}/lat-spin-{r}.json'); a=open(f'{d}/aeron-{r}.txt').read()
        ck64=float(re.search(r'checked throughput    64 B: (\d+)',a).group(1))
        raw64=float(re.search(r'^throughput    64 B: (\d+)',a,re.M).group(1))
        ck4k=float(re.search(r'checked throughput  4096 B: (\d+)',a).group(1))
        m=re.search(r'p50 ([\d.]+) us  p99 ([\d.]+) us',a); ap50=float(m.group(1))*1000; ap99=float(m.group(2))*1000
    except Exception as e:
        continue
    big=g(b,'shm',64,'msgs_per_sec'); bigc=g(b,'c-ring',64,'msgs_per_sec')
    ls=g(l,'shm',64,'p50_ns'); ls99=g(l,'shm',64,'p99_ns')[0]; lc=g(l,'c-spin',64,'p50_ns'); lc99=g(l,'c-spin',64,'p99_ns')[0]; lr=g(l,'c-ring',64,'p50_ns')
    fast=lambda t: max(t[1],t[2])<120
    rows.append(dict(r=r,big=big[0],bigfast=fast(big),bigc=bigc[0],ck64=ck64,raw64=raw64,ck4k=ck4k,ls=ls[0],ls99=ls99,lsfast=fast(ls),lc=lc[0],lc99=lc99,lcfast=fast(lc),lr=lr[0],ap50=ap50,ap99=ap99,afast=ap50<400))
for x in rows:
    print('r%-2d big shm %5.1f M (%s) c-ring %5.1f | aeron chk %5.1f raw %5.1f | rtt shm %4d/%4d (%s) c-spin %4d/%4d (%s) c-ring %4d | aeron %4d/%4d (%s)'%(x['r'],x['big']/1e6,'F' if x['bigfast'] else 's',x['bigc']/1e6,x['ck64']/1e6,x['raw64']/1e6,x['ls'],x['ls99'],'F' if x['lsfast'] else 's',x['lc'],x['lc99'],'F' if x['lcfast'] else 's',x['lr'],x['ap50'],x['ap99'],'F' if x['afast'] else 's'))
def med(v): return st.median(v) if v else float('nan')
print('stream big shm/aeron-checked all %.2f (n=%d) fast %.2f; shm/aeron-raw %.2f; shm/c-ring %.2f'%(med([x['big']/x['ck64'] for x in rows]),len(rows),med([x['big']/x['ck64'] for x in rows if x['bigfast']]),med([x['big']/x['raw64'] for x in rows]),med([x['big']/x['bigc'] for x in rows])))
ff=[x for x in rows if x['lsfast'] and x['afast']]
print('rtt p50 shm/aeron both fast: %s -> median %.2f; p99 %.2f'%([round(x['ls']/x['ap50'],2) for x in ff],med([x['ls']/x['ap50'] for x in ff]),med([x['ls99']/x['ap99'] for x in ff])))
fc=[x for x in rows if x['lsfast'] and x['lcfast']]
print('rtt p50 shm/c-spin both fast: %s -> median %.2f; p99 %.2f'%([round(x['ls']/x['lc'],2) for x in fc],med([x['ls']/x['lc'] for x in fc]),med([x['ls99']/x['lc99'] for x in fc])))
print('aeron fast p50s',[x['ap50'] for x in rows if x['afast']],'c-spin fast p50s',[x['lc'] for x in rows if x['lcfast']], 'shm fast p50s',[x['ls'] for x in rows if x['lsfast']])
