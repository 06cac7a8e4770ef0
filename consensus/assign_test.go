package consensus

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

func jobIDFor(i int) common.Hash { return crypto.Keccak256Hash([]byte(fmt.Sprintf("job %d", i))) }

// checkAssignment checks the invariants every assignment has: r distinct
// validators per claim in ascending order, stake and count per claim, and
// ByValidator the exact transpose of ByClaim.
func checkAssignment(t *testing.T, set *ValidatorSet, a *Assignment, claimCount, r int) {
	t.Helper()
	if len(a.ByClaim) != claimCount || len(a.Stake) != claimCount || len(a.Count) != claimCount || len(a.ByValidator) != set.Len() {
		t.Fatalf("sizes: %d claims, %d stakes, %d counts, %d validators", len(a.ByClaim), len(a.Stake), len(a.Count), len(a.ByValidator))
	}
	transpose := make([][]uint32, set.Len())
	for c, vs := range a.ByClaim {
		if len(vs) != r {
			t.Fatalf("claim %d has %d validators, want %d", c, len(vs), r)
		}
		var stake uint64
		for k, v := range vs {
			if v < 0 || v >= set.Len() {
				t.Fatalf("claim %d: validator %d out of range", c, v)
			}
			if k > 0 && vs[k-1] >= v {
				t.Fatalf("claim %d: validators %v not strictly ascending (distinct)", c, vs)
			}
			stake += set.At(v).Stake
			transpose[v] = append(transpose[v], uint32(c))
		}
		if a.Stake[c] != stake || a.Count[c] != uint64(r) {
			t.Fatalf("claim %d: stake %d count %d, want %d and %d", c, a.Stake[c], a.Count[c], stake, r)
		}
	}
	for v := range transpose {
		if !slices.Equal(transpose[v], a.ByValidator[v]) {
			t.Fatalf("validator %d: ByValidator %v, ByClaim gives %v", v, a.ByValidator[v], transpose[v])
		}
	}
}

func TestAssignAllValidators(t *testing.T) {
	f := newFixture(t, 1, 10, 20, 30, 40, 50)
	for _, r := range []uint32{0, 5, 6, 1000} {
		t.Run(fmt.Sprintf("replication %d", r), func(t *testing.T) {
			a := Assign(f.set, jobIDFor(1), 7, r)
			checkAssignment(t, f.set, a, 7, 5)
			for c := range a.Stake {
				if a.Stake[c] != f.set.TotalStake() {
					t.Fatalf("claim %d: stake %d", c, a.Stake[c])
				}
			}
		})
	}
}

func TestAssignDistinctAndDeterministic(t *testing.T) {
	f := newFixture(t, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89)
	for r := 1; r < f.set.Len(); r++ {
		t.Run(fmt.Sprintf("replication %d", r), func(t *testing.T) {
			for j := range 20 {
				a := Assign(f.set, jobIDFor(j), 40, uint32(r))
				checkAssignment(t, f.set, a, 40, r)
				if b := Assign(f.set, jobIDFor(j), 40, uint32(r)); !reflect.DeepEqual(a, b) {
					t.Fatal("same job id gave two assignments")
				}
			}
			if r < 5 && reflect.DeepEqual(Assign(f.set, jobIDFor(1), 40, uint32(r)).ByClaim, Assign(f.set, jobIDFor(2), 40, uint32(r)).ByClaim) {
				t.Fatal("two job ids gave the same assignment of 40 claims")
			}
		})
	}
}

// TestAssignPrefixStable checks that claim i's validators depend on the job
// id and i only, not on the number of claims.
func TestAssignPrefixStable(t *testing.T) {
	f := newFixture(t, 1, equalStakes(9)...)
	a := Assign(f.set, jobIDFor(3), 5, 3)
	b := Assign(f.set, jobIDFor(3), 50, 3)
	if !reflect.DeepEqual(a.ByClaim, b.ByClaim[:5]) {
		t.Fatal("claim assignment depends on the claim count")
	}
}

// TestAssignStakeWeighted draws one validator per claim over many claims: a
// validator with 3x the stake of each other one must be picked about 3x as
// often. Uniform picking would give a ratio near 1 and fail the bounds.
func TestAssignStakeWeighted(t *testing.T) {
	f := newFixture(t, 1, 30, 10, 10, 10)
	heavy, _, _ := f.set.Lookup(f.genesis.Validators[0].Address)
	counts := make([]int, f.set.Len())
	const jobs, claimsPerJob = 50, MaxClaims
	for j := range jobs {
		a := Assign(f.set, jobIDFor(j), claimsPerJob, 1)
		for _, vs := range a.ByClaim {
			counts[vs[0]]++
		}
	}
	total := jobs * claimsPerJob
	light := 0
	for v, n := range counts {
		if v != heavy {
			light += n
			// expected total/6 = 2133, standard deviation about 42
			if n < 1950 || n > 2320 {
				t.Errorf("light validator %d picked %d of %d times, want about %d", v, n, total, total/6)
			}
		}
	}
	ratio := float64(counts[heavy]) / (float64(light) / 3)
	if ratio < 2.6 || ratio > 3.4 {
		t.Fatalf("heavy validator picked %.2fx as often as a light one, want about 3 (counts %v)", ratio, counts)
	}
	t.Logf("counts %v, ratio %.3f", counts, ratio)
}

// TestAssignWithoutReplacementWeights checks the second draw at r=2: the
// heavy validator is in almost every pair, and each light one in its share.
func TestAssignWithoutReplacementWeights(t *testing.T) {
	f := newFixture(t, 1, 1000, 1, 1, 1)
	heavy, _, _ := f.set.Lookup(f.genesis.Validators[0].Address)
	in := 0
	for j := range 4 {
		for _, vs := range Assign(f.set, jobIDFor(j), MaxClaims, 2).ByClaim {
			if slices.Contains(vs, heavy) {
				in++
			}
		}
	}
	if in < 4*MaxClaims*99/100 {
		t.Fatalf("heavy validator in %d of %d pairs", in, 4*MaxClaims)
	}
}

// TestFullAssignmentShared: with every validator on every claim, Assign
// returns one shared assignment per claim count, equal to the one computed
// afresh, for any job; past maxSharedAssignment claims it computes anew.
func TestFullAssignmentShared(t *testing.T) {
	f := newFixture(t, 1, 10, 20, 30, 40, 50)
	for _, r := range []uint32{0, 5, 9} {
		for _, claims := range []int{0, 1, 7, maxSharedAssignment} {
			a := Assign(f.set, jobIDFor(1), claims, r)
			if b := Assign(f.set, jobIDFor(2), claims, r); a != b {
				t.Fatalf("replication %d, %d claims: two full assignments, want one shared", r, claims)
			}
			if fresh := assign(f.set, jobIDFor(3), claims, f.set.Len()); !reflect.DeepEqual(a, fresh) {
				t.Fatalf("replication %d, %d claims: shared %+v, computed %+v", r, claims, a, fresh)
			}
		}
	}
	if Assign(f.set, jobIDFor(1), maxSharedAssignment+1, 0) == Assign(f.set, jobIDFor(1), maxSharedAssignment+1, 0) {
		t.Fatal("an assignment past maxSharedAssignment claims was shared")
	}
	// A partial replication depends on the job: never shared.
	if Assign(f.set, jobIDFor(1), 3, 2) == Assign(f.set, jobIDFor(1), 3, 2) {
		t.Fatal("a partial assignment was shared")
	}
}
