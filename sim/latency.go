package sim

import (
	"fmt"
	"time"
)

// DefaultRegions are the regions of the default latency table, named after
// the AWS regions it was measured between: us-east (N. Virginia), us-west
// (Oregon), eu-west (Ireland), ap-northeast (Tokyo), ap-southeast
// (Singapore).
var DefaultRegions = []string{"us-east", "us-west", "eu-west", "ap-northeast", "ap-southeast"}

// DefaultRTTMS holds published average round-trip times in milliseconds
// between those AWS regions, from the table "Latency Between AWS Global
// Regions" as reproduced at
// https://acomputerscientistlearnsaws.blogspot.com/2017/04/aws-regions.html.
// Within a region the round trip is 1 ms. A link's one-way latency is half
// its round trip.
var DefaultRTTMS = map[[2]string]float64{
	{"us-east", "us-west"}:           88,
	{"us-east", "eu-west"}:           81,
	{"us-east", "ap-northeast"}:      145,
	{"us-east", "ap-southeast"}:      217,
	{"us-west", "eu-west"}:           137,
	{"us-west", "ap-northeast"}:      89,
	{"us-west", "ap-southeast"}:      161,
	{"eu-west", "ap-northeast"}:      212,
	{"eu-west", "ap-southeast"}:      239,
	{"ap-northeast", "ap-southeast"}: 74,
}

// DefaultIntraRegionRTTMS is the round trip within one region.
const DefaultIntraRegionRTTMS = 1

// defaultRTT is the default table's round trip between two regions, and
// whether it has one.
func defaultRTT(a, b string) (float64, bool) {
	if a == b {
		return DefaultIntraRegionRTTMS, true
	}
	if v, ok := DefaultRTTMS[[2]string{a, b}]; ok {
		return v, true
	}
	v, ok := DefaultRTTMS[[2]string{b, a}]
	return v, ok
}

// latencyMatrix is the one-way latency between the scenario's regions, by
// region index: the default table overridden by [[latency]] tables. Every
// pair of regions needs a round trip from one or the other.
func (s *Scenario) latencyMatrix() ([][]time.Duration, error) {
	idx := make(map[string]int, len(s.Region))
	for i, r := range s.Region {
		idx[r.Name] = i
	}
	n := len(s.Region)
	rtt := make([][]float64, n)
	set := make([][]bool, n)
	for i := range rtt {
		rtt[i] = make([]float64, n)
		set[i] = make([]bool, n)
		for j := range rtt[i] {
			rtt[i][j], set[i][j] = defaultRTT(s.Region[i].Name, s.Region[j].Name)
		}
	}
	for k, l := range s.Latency {
		i, ok1 := idx[l.From]
		j, ok2 := idx[l.To]
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: latency %d: %s to %s: both must be regions of the scenario", ErrInvalidScenario, k+1, l.From, l.To)
		}
		if l.RTTMS < 0 || l.RTTMS > 10000 {
			return nil, fmt.Errorf("%w: latency %s to %s: rtt_ms %g: want 0 to 10000", ErrInvalidScenario, l.From, l.To, l.RTTMS)
		}
		rtt[i][j], rtt[j][i] = l.RTTMS, l.RTTMS
		set[i][j], set[j][i] = true, true
	}
	out := make([][]time.Duration, n)
	for i := range out {
		out[i] = make([]time.Duration, n)
		for j := range out[i] {
			if !set[i][j] {
				return nil, fmt.Errorf("%w: no round-trip time between regions %s and %s: add a [[latency]] table for them", ErrInvalidScenario, s.Region[i].Name, s.Region[j].Name)
			}
			out[i][j] = time.Duration(rtt[i][j] / 2 * float64(time.Millisecond))
		}
	}
	return out, nil
}
