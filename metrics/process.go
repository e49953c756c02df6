package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
)

// The process's and the Go runtime's families: the few an operator of a small VM watches,
// under the names and help texts the Prometheus client library gives them, so dashboards
// made for other Go programs work.
var (
	goroutinesFamily = family{"go_goroutines", "gauge",
		"Number of goroutines that currently exist."}
	heapFamily = family{"go_memstats_heap_alloc_bytes", "gauge",
		"Number of heap bytes allocated and currently in use. Equals to /memory/classes/heap/objects:bytes."}
	cpuFamily = family{"process_cpu_seconds_total", "counter",
		"Total user and system CPU time spent in seconds."}
	fdsFamily = family{"process_open_fds", "gauge",
		"Number of open file descriptors."}
	rssFamily = family{"process_resident_memory_bytes", "gauge",
		"Resident memory size in bytes."}
	startFamily = family{"process_start_time_seconds", "gauge",
		"Start time of the process since unix epoch in seconds."}
)

// writeRuntime writes the Go runtime's families, read with runtime/metrics, which does not
// stop the world as runtime.ReadMemStats does.
func writeRuntime(t *text) {
	samples := []metrics.Sample{
		{Name: "/sched/goroutines:goroutines"},
		{Name: "/memory/classes/heap/objects:bytes"},
	}
	metrics.Read(samples)
	for i, f := range []family{goroutinesFamily, heapFamily} {
		// A metric this Go release does not have reads as KindBad; leave it out.
		if samples[i].Value.Kind() == metrics.KindUint64 {
			t.head(f)
			t.uint(f.name, samples[i].Value.Uint64())
		}
	}
}

// writeProcess writes the process's families, read from /proc/self. A family that cannot be
// read is left out, and the error says which and why.
func writeProcess(t *text) error {
	var errs []error
	if st, err := readStat(); err != nil {
		errs = append(errs, err)
	} else {
		t.head(cpuFamily)
		t.float(cpuFamily.name, float64(st.cpuTicks)/userHZ)
		t.head(rssFamily)
		t.uint(rssFamily.name, st.rssPages*uint64(os.Getpagesize()))
		if boot, err := bootTime(); err != nil {
			errs = append(errs, err)
		} else {
			t.head(startFamily)
			t.float(startFamily.name, float64(boot)+float64(st.startTicks)/userHZ)
		}
	}
	if n, err := openFDs(); err != nil {
		errs = append(errs, err)
	} else {
		t.head(fdsFamily)
		t.uint(fdsFamily.name, uint64(n))
	}
	return errors.Join(errs...)
}

// userHZ is the unit of the times in /proc: 1/100 s on every Linux architecture, whatever
// the kernel's own tick.
const userHZ = 100

// stat is what the metrics read from /proc/self/stat; see proc_pid_stat(5).
type stat struct {
	cpuTicks   uint64 // utime + stime
	startTicks uint64 // since boot
	rssPages   uint64
}

func readStat() (stat, error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return stat{}, err
	}
	// Field 2, the command name in parentheses, may hold spaces and parentheses itself;
	// after its last ')' come the other fields, split by spaces, the first of them field 3.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("/proc/self/stat: no ')' after the command name in %.100q", b)
	}
	f := bytes.Fields(b[i+1:])
	var v [4]uint64
	for j, n := range [...]int{14, 15, 22, 24} { // utime, stime, starttime, rss
		if n-3 >= len(f) {
			return stat{}, fmt.Errorf("/proc/self/stat: %d fields, want at least %d", len(f)+2, n)
		}
		if v[j], err = strconv.ParseUint(string(f[n-3]), 10, 64); err != nil {
			return stat{}, fmt.Errorf("/proc/self/stat: field %d: %w", n, err)
		}
	}
	return stat{cpuTicks: v[0] + v[1], startTicks: v[2], rssPages: v[3]}, nil
}

// bootSeconds caches bootTime once read: the boot time does not change, and /proc/stat is
// a long file on a machine with many CPUs. Zero until read; a failed read is tried again at
// the next scrape.
var bootSeconds atomic.Uint64

// bootTime returns when the system booted, in seconds since the Unix epoch.
func bootTime() (uint64, error) {
	if s := bootSeconds.Load(); s != 0 {
		return s, nil
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	_, rest, ok := bytes.Cut(b, []byte("\nbtime "))
	if !ok {
		return 0, errors.New("/proc/stat: no btime line, the boot time")
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	s, err := strconv.ParseUint(string(bytes.TrimSpace(line)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/stat: btime: %w", err)
	}
	bootSeconds.Store(s)
	return s, nil
}

// openFDs counts the process's open file descriptors.
func openFDs() (int, error) {
	// Since Linux 6.2 the size of /proc/self/fd is the count: one stat, not a listing.
	if fi, err := os.Stat("/proc/self/fd"); err == nil && fi.Size() > 0 {
		return int(fi.Size()), nil
	}
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	defer d.Close()
	n := 0
	for {
		names, err := d.Readdirnames(256)
		n += len(names)
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	// The listing holds d itself, which is not open but for the count.
	return n - 1, nil
}
