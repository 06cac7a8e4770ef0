package node

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestDocsStateLimitDefaults: the defaults of the rate limit and of the
// pending jobs, as the docs state them, are the code's.
func TestDocsStateLimitDefaults(t *testing.T) {
	var o Options
	o.setDefaults()
	thousands := func(n int) string {
		s := fmt.Sprint(n)
		for i := len(s) - 3; i > 0; i -= 3 {
			s = s[:i] + "," + s[i:]
		}
		return s
	}
	for file, wants := range map[string][]string{
		"../docs/operations.md": {
			fmt.Sprintf("`[api] rate_limit` (%v `POST` requests per second per client", o.RateLimit),
			fmt.Sprintf("`[api] rate_burst` (%d)", o.RateBurst),
			fmt.Sprintf("`[consensus] max_pending_jobs` (%d jobs", o.MaxPendingJobs),
		},
		"../docs/api.md": {
			fmt.Sprintf("%v requests per second sustained, bursts of %d, by\ndefault", o.RateLimit, o.RateBurst),
			fmt.Sprintf("`MaxPendingJobs` in `node.Options`, %d by default", o.MaxPendingJobs),
		},
		"../docs/protocol.md": {
			fmt.Sprintf("(default %s; beyond it `503 overloaded`)", thousands(o.MaxPendingJobs)),
			fmt.Sprintf("(default %v/s, bursts of %d;", o.RateLimit, o.RateBurst),
		},
	} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		// Lines are wrapped anywhere: compare with single spaces.
		text := strings.Join(strings.Fields(string(data)), " ")
		for _, w := range wants {
			if !strings.Contains(text, strings.Join(strings.Fields(w), " ")) {
				t.Errorf("%s does not say %q", file, w)
			}
		}
	}
}
