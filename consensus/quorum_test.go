package consensus

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"testing"
)

func TestQuorumReached(t *testing.T) {
	const big = MaxTotalStake
	tests := []struct {
		name            string
		q               Quorum
		forStake, count uint64
		assigned        uint64
		want            bool
	}{
		{"2/3 of 3: 2 is not strictly more", StakeQuorum(2, 3), 2, 2, 3, false},
		{"2/3 of 3: 3 is enough", StakeQuorum(2, 3), 3, 3, 3, true},
		{"2/3 of 300: 200 not enough", StakeQuorum(2, 3), 200, 0, 300, false},
		{"2/3 of 300: 201 enough", StakeQuorum(2, 3), 201, 0, 300, true},
		{"2/3 of 301: 200 not enough", StakeQuorum(2, 3), 200, 0, 301, false},
		{"2/3 of 301: 201 enough", StakeQuorum(2, 3), 201, 0, 301, true},
		{"1/2 of 10: exactly half not enough", StakeQuorum(1, 2), 5, 0, 10, false},
		{"1/2 of 10: 6 enough", StakeQuorum(1, 2), 6, 0, 10, true},
		{"1/2 of 1: 1 enough", StakeQuorum(1, 2), 1, 0, 1, true},
		{"2/3 of 0 assigned: 0 not enough", StakeQuorum(2, 3), 0, 0, 0, false},
		{"count 3of5: 3 enough", CountQuorum(3, 5), 0, 3, 50, true},
		{"count 3of5: 2 not enough", CountQuorum(3, 5), 1000, 2, 50, false},
		{"count ignores stake", CountQuorum(3, 5), 0, 5, 50, true},
		{"stake ignores count", StakeQuorum(2, 3), 0, 100, 3, false},
		{"huge 2/3: exact two thirds not enough", StakeQuorum(2, 3), big / 3 * 2, 0, big / 3 * 3, false},
		{"huge 2/3: one more enough", StakeQuorum(2, 3), big/3*2 + 1, 0, big / 3 * 3, true},
		{"huge 1/2 of max: half not enough", StakeQuorum(1, 2), big / 2, 0, big, false},
		{"huge 1/2 of max: half plus one enough", StakeQuorum(1, 2), big/2 + 1, 0, big, true},
		{"huge den 2^32", StakeQuorum(1<<31, 1<<32), big/2 + 1, 0, big, true},
		{"huge all of max with 99/100", StakeQuorum(99, 100), big, 0, big, true},
		{"unknown kind never reached", Quorum{Kind: "x"}, 100, 100, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.q.Reached(tt.forStake, tt.count, tt.assigned); got != tt.want {
				t.Fatalf("Reached(%d, %d, %d) under %s = %v, want %v", tt.forStake, tt.count, tt.assigned, tt.q, got, tt.want)
			}
		})
	}
}

func TestQuorumNeeded(t *testing.T) {
	tests := []struct {
		name     string
		q        Quorum
		assigned uint64
		want     uint64
	}{
		{"2/3 of 3", StakeQuorum(2, 3), 3, 3},
		{"2/3 of 300", StakeQuorum(2, 3), 300, 201},
		{"2/3 of 40", StakeQuorum(2, 3), 40, 27},
		{"1/2 of 10", StakeQuorum(1, 2), 10, 6},
		{"1/2 of 11", StakeQuorum(1, 2), 11, 6},
		{"2/3 of max", StakeQuorum(2, 3), MaxTotalStake, 3074457345618258603}, // floor(2^63/3) + 1
		{"count 3of5", CountQuorum(3, 5), 50, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.q.Needed(tt.assigned); got != tt.want {
				t.Fatalf("Needed(%d) under %s = %d, want %d", tt.assigned, tt.q, got, tt.want)
			}
		})
	}
}

// TestQuorumNeededIsLeast checks Reached(Needed) && !Reached(Needed-1) for
// random valid stake rules and assigned stakes up to MaxTotalStake.
func TestQuorumNeededIsLeast(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		den := 2 + rng.Uint64N(1<<32-1)
		num := (den+1)/2 + rng.Uint64N(den-(den+1)/2)
		if num >= den {
			num = den - 1
		}
		q := StakeQuorum(num, den)
		if err := q.Validate(); err != nil {
			t.Fatalf("generated invalid quorum %s: %v", q, err)
		}
		var assigned uint64
		switch rng.IntN(3) {
		case 0:
			assigned = 1 + rng.Uint64N(1000)
		case 1:
			assigned = 1 + rng.Uint64N(MaxTotalStake)
		default:
			assigned = MaxTotalStake - rng.Uint64N(1000)
		}
		n := q.Needed(assigned)
		if n == 0 || n > assigned {
			t.Fatalf("%s of %d: needed %d out of range", q, assigned, n)
		}
		if !q.Reached(n, 0, assigned) || q.Reached(n-1, 0, assigned) {
			t.Fatalf("%s of %d: needed %d is not the least reaching stake", q, assigned, n)
		}
	}
	for m := uint64(1); m <= 30; m++ {
		for n := m/2 + 1; n <= m; n++ {
			q := CountQuorum(n, m)
			k := q.Needed(0)
			if !q.Reached(0, k, 0) || q.Reached(0, k-1, 0) {
				t.Fatalf("%s: needed %d is not the least reaching count", q, k)
			}
		}
	}
}

func TestQuorumValidate(t *testing.T) {
	tests := []struct {
		name string
		q    Quorum
		ok   bool
	}{
		{"2/3", StakeQuorum(2, 3), true},
		{"1/2", StakeQuorum(1, 2), true},
		{"99/100", StakeQuorum(99, 100), true},
		{"den 2^32", StakeQuorum(1<<31, 1<<32), true},
		{"den above 2^32", StakeQuorum(1<<31+1, 1<<32+1), false},
		{"num equals den", StakeQuorum(3, 3), false},
		{"num above den", StakeQuorum(4, 3), false},
		{"below half", StakeQuorum(1, 3), false},
		{"just below half", StakeQuorum(49, 99), false},
		{"zero num", StakeQuorum(0, 3), false},
		{"zero den", StakeQuorum(0, 0), false},
		{"3of5", CountQuorum(3, 5), true},
		{"1of1", CountQuorum(1, 1), true},
		{"2of4 is no strict majority", CountQuorum(2, 4), false},
		{"2of5", CountQuorum(2, 5), false},
		{"n above m", CountQuorum(6, 5), false},
		{"zero n", CountQuorum(0, 5), false},
		{"zero m", CountQuorum(0, 0), false},
		{"m above max validators", CountQuorum(MaxValidators, MaxValidators+1), false},
		{"stake with n", Quorum{Kind: QuorumStake, Num: 2, Den: 3, N: 1}, false},
		{"stake with m", Quorum{Kind: QuorumStake, Num: 2, Den: 3, M: 5}, false},
		{"count with num", Quorum{Kind: QuorumCount, N: 3, M: 5, Num: 2}, false},
		{"count with den", Quorum{Kind: QuorumCount, N: 3, M: 5, Den: 3}, false},
		{"unknown kind", Quorum{Kind: "weight", Num: 2, Den: 3}, false},
		{"empty", Quorum{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.q.Validate()
			if tt.ok && err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrBadQuorum) {
				t.Fatalf("got %v, want %v", err, ErrBadQuorum)
			}
		})
	}
}

func TestParseQuorum(t *testing.T) {
	tests := []struct {
		in   string
		want Quorum
		ok   bool
	}{
		{"2/3", StakeQuorum(2, 3), true},
		{" 2/3\n", StakeQuorum(2, 3), true},
		{"1/2", StakeQuorum(1, 2), true},
		{"3of5", CountQuorum(3, 5), true},
		{"1of1", CountQuorum(1, 1), true},
		{"1/3", Quorum{}, false},
		{"2of4", Quorum{}, false},
		{"3/3", Quorum{}, false},
		{"2/0", Quorum{}, false},
		{"-1/3", Quorum{}, false},
		{"2/ 3", Quorum{}, false},
		{"a/b", Quorum{}, false},
		{"3 of 5", Quorum{}, false},
		{"3of", Quorum{}, false},
		{"67%", Quorum{}, false},
		{"", Quorum{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			q, err := ParseQuorum(tt.in)
			if !tt.ok {
				if !errors.Is(err, ErrBadQuorum) {
					t.Fatalf("got %v, %v; want %v", q, err, ErrBadQuorum)
				}
				return
			}
			if err != nil || q != tt.want {
				t.Fatalf("got %+v, %v; want %+v", q, err, tt.want)
			}
			back, err := ParseQuorum(q.String())
			if err != nil || back != q {
				t.Fatalf("String %q does not parse back: %+v, %v", q.String(), back, err)
			}
		})
	}
}

// TestToleranceStakeExact: the stake tolerance, computed in 64 and 128
// bits, is (2*num - den) * A / den rounded down, as big integers give it,
// for every quorum Validate takes, at the edges of its bounds and of the
// stake.
func TestToleranceStakeExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	quorums := []Quorum{
		{Kind: QuorumStake, Num: 1, Den: 2}, {Kind: QuorumStake, Num: 2, Den: 3},
		{Kind: QuorumStake, Num: 1<<32 - 1, Den: 1 << 32}, {Kind: QuorumStake, Num: 1 << 31, Den: 1 << 32},
	}
	for range 200 {
		den := 2 + r.Uint64N(1<<32-1)
		quorums = append(quorums, Quorum{Kind: QuorumStake, Num: (den+1)/2 + r.Uint64N(den/2), Den: den})
	}
	stakes := []uint64{0, 1, 3, 1 << 40, 1<<64 - 1}
	for range 20 {
		stakes = append(stakes, r.Uint64())
	}
	for _, q := range quorums {
		if err := q.Validate(); err != nil {
			t.Fatalf("quorum %v: %v", q, err)
		}
		for _, stake := range stakes {
			want := new(big.Int).SetUint64(2)
			want.Mul(want, new(big.Int).SetUint64(q.Num))
			want.Sub(want, new(big.Int).SetUint64(q.Den))
			want.Mul(want, new(big.Int).SetUint64(stake))
			want.Quo(want, new(big.Int).SetUint64(q.Den))
			if got := Tolerance(nil, q, &Assignment{Stake: []uint64{stake}}, 0); got != want.Uint64() {
				t.Fatalf("quorum %d/%d, stake %d: tolerance %d, want %d", q.Num, q.Den, stake, got, want)
			}
		}
	}
}
