package proxy_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/routie/routie/proxy"
)

// version is an upstream that says its name in X-App and, like many apps, sets a cookie of
// its own on every answer.
func version(t *testing.T, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-App", name)
		http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: "s-" + name, Path: "/"})
		io.WriteString(w, "hello from "+name+"\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// canaryFront starts the proxy on a real socket with stable active and canary taking split.
func canaryFront(t *testing.T, split proxy.Split) (front *httptest.Server, p *proxy.Proxy, stable, canary *proxy.Target) {
	t.Helper()
	p = proxy.New(slog.New(slog.DiscardHandler))
	p.SetAccessLog(false)
	var err error
	if stable, err = p.NewTarget(version(t, "stable").Listener.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if canary, err = p.NewTarget(version(t, "canary").Listener.Addr().String()); err != nil {
		t.Fatal(err)
	}
	p.SetActive(stable)
	p.SetCanary(canary, split)
	front = httptest.NewServer(p)
	t.Cleanup(func() {
		front.Close()
		stable.Close()
		canary.Close()
	})
	return front, p, stable, canary
}

// answer is what a client saw of one request.
type answer struct {
	app    string
	ticket int // the ticket in routie's Set-Cookie, -1 if none
	cookie string
}

func do(t *testing.T, c *http.Client, req *http.Request) answer {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", req.Method, req.URL, err)
		return answer{ticket: -1}
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("%s %s: %s", req.Method, req.URL, resp.Status)
	}
	a := answer{app: resp.Header.Get("X-App"), ticket: -1}
	for _, line := range resp.Header.Values("Set-Cookie") {
		if v, ok := strings.CutPrefix(line, proxy.CanaryCookie+"="); ok {
			a.cookie = line
			n, err := strconv.Atoi(v[:strings.IndexByte(v, ';')])
			if err != nil {
				t.Errorf("routie's cookie %q has no number", line)
			}
			a.ticket = n
		}
	}
	return a
}

func get(t *testing.T, c *http.Client, url string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	return do(t, c, req)
}

// onCanary is the rule the proxy documents: the client holding ticket n goes to the canary.
func onCanary(n int, s proxy.Split) bool {
	return (uint32(n)+s.Salt)%proxy.ShareScale < s.Share
}

func TestCanaryTakesItsShareOfRequestsFromClientsWithoutCookies(t *testing.T) {
	split := proxy.Split{Share: 1000, Salt: 4242} // 10%
	front, _, _, _ := canaryFront(t, split)
	const clients, each = 50, 120 // 6000 requests
	var canary, total atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		// Keep-alive, and no cookie jar: a client routie cannot pin.
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		t.Cleanup(c.CloseIdleConnections)
		wg.Go(func() {
			for range each {
				a := get(t, c, front.URL+"/")
				total.Add(1)
				if a.app == "canary" {
					canary.Add(1)
				}
				// Every answer offers the client a ticket, and the ticket says where it went.
				if a.ticket < 0 || onCanary(a.ticket, split) != (a.app == "canary") {
					t.Errorf("answer from %s with Set-Cookie %q: the ticket does not match the version", a.app, a.cookie)
					return
				}
			}
		})
	}
	wg.Wait()
	share := 100 * float64(canary.Load()) / float64(total.Load())
	t.Logf("canary at 10%%: %d of %d requests (%.2f%%)", canary.Load(), total.Load(), share)
	if share < 8 || share > 12 {
		t.Fatalf("the canary at 10%% got %.2f%% of %d requests, want 10 ± 2", share, total.Load())
	}
}

func TestClientWithTheCookieStaysOnItsVersion(t *testing.T) {
	split := proxy.Split{Share: 5000, Salt: 17}
	front, _, _, _ := canaryFront(t, split)
	seen := map[string]bool{}
	// Clients with a cookie jar, as browsers, until both versions have had one.
	for i := 0; i < 64 && len(seen) < 2; i++ {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Transport: &http.Transport{}}
		first := get(t, c, front.URL+"/")
		if first.ticket < 0 {
			t.Fatalf("the first answer set no %s cookie", proxy.CanaryCookie)
		}
		seen[first.app] = true
		for n := range 100 {
			a := get(t, c, front.URL+fmt.Sprintf("/page/%d", n))
			if a.app != first.app {
				t.Fatalf("client %d: request %d went to %s after the first went to %s", i, n+2, a.app, first.app)
			}
			if a.cookie != "" {
				t.Fatalf("client %d: request %d, which carried the cookie, got another: %q", i, n+2, a.cookie)
			}
		}
		c.CloseIdleConnections()
	}
	if len(seen) < 2 {
		t.Fatalf("64 clients at 50%% all went to %v", seen)
	}
}

func TestBothProxyPathsSplitAndSetTheCookieNextToTheApps(t *testing.T) {
	split := proxy.Split{Share: 5000, Salt: 0}
	front, _, _, _ := canaryFront(t, split)
	for _, tc := range []struct {
		name, method string
		body         string
	}{
		{"bodiless GET takes the short path", http.MethodGet, ""},
		{"POST with a body takes ReverseProxy", http.MethodPost, "order=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, ticket := range []int{10, 9990} { // one each side of 50%
				want := "stable"
				if onCanary(ticket, split) {
					want = "canary"
				}
				req, _ := http.NewRequest(tc.method, front.URL+"/orders", strings.NewReader(tc.body))
				if tc.body == "" {
					req.Body = nil
				}
				req.Header.Set("Cookie", fmt.Sprintf("theme=dark; %s=%d", proxy.CanaryCookie, ticket))
				if a := do(t, front.Client(), req); a.app != want || a.cookie != "" {
					t.Errorf("ticket %d: served by %s with Set-Cookie %q, want %s and no new cookie", ticket, a.app, a.cookie, want)
				}
			}
			// Without a ticket the answer gives one, and keeps the app's own cookie.
			req, _ := http.NewRequest(tc.method, front.URL+"/orders", strings.NewReader(tc.body))
			if tc.body == "" {
				req.Body = nil
			}
			resp, err := front.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			var names []string
			for _, c := range resp.Cookies() {
				names = append(names, c.Name)
				if c.Name == proxy.CanaryCookie && (c.Path != "/" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode) {
					t.Errorf("routie's cookie %+v, want Path=/, HttpOnly, SameSite=Lax", c)
				}
			}
			if strings.Join(names, " ") != "JSESSIONID "+proxy.CanaryCookie {
				t.Errorf("cookies set: %v, want the app's JSESSIONID and routie's %s", names, proxy.CanaryCookie)
			}
		})
	}
}

func TestBrowserWithoutOurCookieGetsOneVersionForItsFirstParallelRequests(t *testing.T) {
	split := proxy.Split{Share: 5000, Salt: 99}
	front, _, _, _ := canaryFront(t, split)
	apps := map[string]int{}
	for user := range 40 {
		// A returning user: the app's session cookie, not routie's yet. Its page and its
		// assets go out before any answer pins it.
		session := fmt.Sprintf("JSESSIONID=user%d", user)
		var mu sync.Mutex
		got := map[answer]bool{}
		var wg sync.WaitGroup
		for asset := range 6 {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/asset/%d.js", front.URL, asset), nil)
				req.Header.Set("Cookie", session)
				a := do(t, &http.Client{Transport: &http.Transport{}}, req)
				mu.Lock()
				got[answer{app: a.app, ticket: a.ticket}] = true
				mu.Unlock()
			})
		}
		wg.Wait()
		if len(got) != 1 {
			t.Fatalf("user %d's parallel first requests got %v, want one version and one ticket", user, got)
		}
		for a := range got {
			apps[a.app]++
		}
	}
	// Users behind one address are still spread: the hash is of their cookies.
	if apps["stable"] == 0 || apps["canary"] == 0 {
		t.Fatalf("40 users at 50%% from one address all went one way: %v", apps)
	}
}

func TestRaisingTheShareMovesClientsOntoTheCanaryAndNoneBack(t *testing.T) {
	split := proxy.Split{Share: 1000, Salt: 7000}
	front, p, _, canary := canaryFront(t, split)
	const clients = 400
	before := make([]string, clients)
	for i := range clients {
		req, _ := http.NewRequest(http.MethodGet, front.URL+"/", nil)
		req.AddCookie(&http.Cookie{Name: proxy.CanaryCookie, Value: strconv.Itoa(i * proxy.ShareScale / clients)})
		before[i] = do(t, front.Client(), req).app
	}
	split.Share = 5000
	p.SetCanary(canary, split)
	moved, on := 0, 0
	for i := range clients {
		req, _ := http.NewRequest(http.MethodGet, front.URL+"/", nil)
		req.AddCookie(&http.Cookie{Name: proxy.CanaryCookie, Value: strconv.Itoa(i * proxy.ShareScale / clients)})
		after := do(t, front.Client(), req).app
		if before[i] == "canary" && after != "canary" {
			t.Fatalf("client %d was on the canary at 10%% and went back at 50%%", i)
		}
		if before[i] != after {
			moved++
		}
		if after == "canary" {
			on++
		}
	}
	if on != clients/2 || moved != clients*4/10 {
		t.Fatalf("at 50%%: %d of %d clients on the canary, %d moved; want %d and %d", on, clients, moved, clients/2, clients*4/10)
	}
}

func TestWithoutACanaryTheCookieIsIgnoredAndNoneIsSet(t *testing.T) {
	front, p, _, _ := canaryFront(t, proxy.Split{Share: 9999})
	p.EndCanary()
	if c, _ := p.Canary(); c != nil {
		t.Fatalf("Canary() = %v after EndCanary", c)
	}
	for _, cookie := range []string{"", proxy.CanaryCookie + "=1", "JSESSIONID=x"} {
		req, _ := http.NewRequest(http.MethodGet, front.URL+"/", nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		if a := do(t, front.Client(), req); a.app != "stable" || a.cookie != "" {
			t.Errorf("Cookie %q: served by %s with Set-Cookie %q, want stable and none", cookie, a.app, a.cookie)
		}
	}
}

func TestMalformedTicketIsReplaced(t *testing.T) {
	front, _, _, _ := canaryFront(t, proxy.Split{Share: 5000})
	for _, v := range []string{"", "-1", "12345", "abc", "1e3"} {
		req, _ := http.NewRequest(http.MethodGet, front.URL+"/", nil)
		req.Header.Set("Cookie", proxy.CanaryCookie+"="+v)
		if a := do(t, front.Client(), req); a.ticket < 0 || a.ticket >= proxy.ShareScale {
			t.Errorf("ticket %q: Set-Cookie %q, want a fresh ticket", v, a.cookie)
		}
	}
}
