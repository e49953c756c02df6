package proxy

import (
	"hash/maphash"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// A canary takes a share of the requests while the active target keeps the rest. The split
// is per client, not per request, wherever the client lets routie tell it apart: each client
// holds a ticket, a number in [0, ShareScale) kept in the CanaryCookie, and it goes to the
// canary when its ticket, turned by the canary's salt, falls below the canary's share:
//
//	(ticket + salt) mod ShareScale < share
//
// Tickets are uniform, so the share of clients is the share asked for. A client keeps its
// version for as long as the share stays the same; raising the share (a canary deploy's
// next step) moves some clients from the active target to the canary and never one back, so
// the canary's share of returning clients follows the steps instead of staying at the
// first one. The salt is drawn anew for each canary, so each one takes a different slice of
// the clients rather than the same unlucky few every time.
//
// A request without a valid ticket gets one, and its answer carries it in a Set-Cookie:
//   - with no cookies at all, a random ticket: such a client (curl, an API client, a
//     crawler) cannot be pinned, so each of its requests is split by the share;
//   - with other cookies but not ours, a ticket hashed from those cookies: a browser
//     that has the app's session cookie but not ours yet (the canary just started) sends
//     its first page and its assets in parallel, before any answer pins it, and they all
//     agree on the version. Hashing the cookies rather than the client address keeps users
//     behind one NAT apart.

// CanaryCookie is the cookie that pins a client to its side of a canary. Its value is the
// client's ticket, a decimal number below ShareScale.
const CanaryCookie = "routie_canary"

// ShareScale is the unit of Split.Share: a share of 500 is 5% of the requests.
const ShareScale = 10000

// Split says how requests are shared between the active target and a canary.
type Split struct {
	// Share is the canary's part of the clients, per ShareScale (500 is 5%), from 1 to
	// ShareScale-1.
	Share uint32
	// Salt picks which clients the canary takes. Keep it for the canary's whole life,
	// across restarts too, so the clients' cookies keep pointing where they did.
	Salt uint32
}

// SetCanary sends s.Share of the clients to t from now on, the rest to the active target.
// It replaces a canary already set (to change its share, call it again with the same t).
// Call it after SetActive.
func (p *Proxy) SetCanary(t *Target, s Split) {
	t.Prepare()
	share := min(max(s.Share, 1), ShareScale-1)
	p.update(func(r *route) { r.canary, r.share, r.salt = t, share, s.Salt%ShareScale })
}

// EndCanary sends every new request to the active target again. Requests already admitted
// to the canary finish there; drain it to wait for them, as for a target switched away from:
// a request that counted itself on the canary before this sees the route change and picks
// again, so a drain that starts after EndCanary misses none.
func (p *Proxy) EndCanary() {
	p.update(func(r *route) { r.canary, r.share, r.salt = nil, 0, 0 })
}

// update replaces the route with a changed copy. The compare-and-swap keeps a change made
// meanwhile by another caller (SetActive) from being lost.
func (p *Proxy) update(change func(r *route)) {
	for {
		old := p.route.Load()
		if old == nil || old.active == nil {
			return // no active target yet: nothing to split
		}
		next := *old
		change(&next)
		if p.route.CompareAndSwap(old, &next) {
			return
		}
	}
}

// Canary returns the canary and its split, or nil when none is set.
func (p *Proxy) Canary() (*Target, Split) {
	r := p.route.Load()
	if r == nil || r.canary == nil {
		return nil, Split{}
	}
	return r.canary, Split{Share: r.share, Salt: r.salt}
}

// takes reports whether the client holding ticket n goes to the canary.
func (r *route) takes(n uint32) bool {
	x := n + r.salt // both below ShareScale: no overflow, one subtraction wraps it
	if x >= ShareScale {
		x -= ShareScale
	}
	return x < r.share
}

// ticket is a client's place in the split.
type ticket struct {
	n uint32
	// fresh is set when the request brought no valid ticket: its answer must carry one.
	fresh bool
}

// readTicket finds the request's ticket in its cookies or gives it one (see the top of this
// file). It does not allocate.
func (p *Proxy) readTicket(r *http.Request) ticket {
	cookies := r.Header["Cookie"]
	if n, ok := cookieTicket(cookies); ok {
		return ticket{n: n}
	}
	if len(cookies) == 0 {
		return ticket{n: rand.Uint32N(ShareScale), fresh: true}
	}
	var h maphash.Hash
	h.SetSeed(p.seed)
	for _, c := range cookies {
		h.WriteString(c)
	}
	return ticket{n: uint32(h.Sum64() % ShareScale), fresh: true}
}

// cookieTicket returns the ticket in the CanaryCookie among the Cookie header lines, if there
// is a valid one.
func cookieTicket(lines []string) (uint32, bool) {
	for _, line := range lines {
		for line != "" {
			var pair string
			pair, line, _ = strings.Cut(line, ";")
			value, ok := strings.CutPrefix(textproto.TrimString(pair), CanaryCookie+"=")
			if !ok {
				continue
			}
			return parseTicket(value)
		}
	}
	return 0, false
}

// parseTicket reads a ticket: one to four decimal digits.
func parseTicket(s string) (uint32, bool) {
	if s == "" || len(s) > 4 {
		return 0, false
	}
	var n uint32
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint32(c-'0')
	}
	return n, true
}

// setCookie is the Set-Cookie header value that gives a client ticket n. It is a session
// cookie, for the whole site, hidden from scripts and not sent on cross-site subrequests;
// over HTTPS it is Secure.
func setCookie(n uint32, secure bool) string {
	b := make([]byte, 0, 80)
	b = append(b, CanaryCookie+"="...)
	b = strconv.AppendUint(b, uint64(n), 10)
	b = append(b, "; Path=/; HttpOnly; SameSite=Lax"...)
	if secure {
		b = append(b, "; Secure"...)
	}
	return string(b)
}
