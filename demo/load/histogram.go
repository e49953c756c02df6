package main

import (
	"math/bits"
	"time"
)

// histogram counts latencies in log-linear buckets: values under 128µs exactly, larger ones
// within 0.8% (128 buckets per power of two). It is a fixed array, so recording never
// allocates and a long run costs no more memory than a short one.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    time.Duration
	max    time.Duration
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	histMaxUS   = 1<<32 - 1 // about 71 minutes; longer latencies are counted as this
	// Values below 2^32 µs have bits.Len64 ≤ 32, so the highest group is 32-histSubBits.
	histBuckets = (32 - histSubBits + 1) * histSub
)

func (h *histogram) record(d time.Duration) {
	h.n++
	h.sum += d
	h.max = max(h.max, d)
	us := uint64(max(d.Microseconds(), 0))
	h.counts[bucketOf(min(us, histMaxUS))]++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// quantile returns the latency below which a share q (0 to 1) of the values fall.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketMid(i))*time.Microsecond, h.max)
		}
	}
	return h.max
}

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// bucketOf maps v to its bucket: group g holds [2^(g+6), 2^(g+7)) in steps of 2^(g-1)
// (group 0 holds 0 to 127 one by one).
func bucketOf(v uint64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1
	return (shift+1)<<histSubBits + int(v>>shift) - histSub
}

// bucketMid is the middle of bucket i, the value bucketOf's inverse reports.
func bucketMid(i int) uint64 {
	g := i >> histSubBits
	if g == 0 {
		return uint64(i)
	}
	shift := g - 1
	lower := uint64(histSub+i&(histSub-1)) << shift
	return lower + (uint64(1)<<shift)/2
}
