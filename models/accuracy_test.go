package models

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/verity-network/verity/claims"
)

func TestMajorityProbability(t *testing.T) {
	cases := []struct {
		n    int
		p    float64
		want float64
	}{
		{1, 0.7, 0.7},
		{2, 0.7, 0.49}, // a strict majority of 2 is both
		{3, 0.7, 0.784},
		{3, 0.5, 0.5},
		{5, 0.6, 0.68256},
		{9, 0.8, 0.98041856},
		{9, 0, 0},
		{9, 1, 1},
		{1001, 0.5, 0.5},
	}
	for _, tc := range cases {
		if got := MajorityProbability(tc.n, tc.p); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("MajorityProbability(%d, %v) = %.10f, want %.10f", tc.n, tc.p, got, tc.want)
		}
	}
}

// constantJudges makes every validator answer f(truth).
func constantJudges(f func(claims.Verdict) claims.Verdict) NewJudgeFunc {
	return func(_ int, _ float64, oracle JudgeFunc) (JudgeFunc, error) {
		return func(ctx context.Context, c claims.Claim) claims.Verdict { return f(oracle(ctx, c)) }, nil
	}
}

func TestRunAccuracyDecisionRule(t *testing.T) {
	cases := []struct {
		name                      string
		judge                     func(claims.Verdict) claims.Verdict
		correct, wrong, undecided float64
		single                    float64
	}{
		{"perfect validators", func(v claims.Verdict) claims.Verdict { return v }, 1, 0, 0, 1},
		{"liars", claims.Verdict.Invert, 0, 1, 0, 0},
		{"silent", func(claims.Verdict) claims.Verdict { return claims.Abstain }, 0, 0, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// 600 claims span three jobs, the last one partial.
			rows, err := RunAccuracy(context.Background(), AccuracyConfig{
				Claims: 600, Accuracies: []float64{0.7}, Validators: []int{3, 4}, NewJudge: constantJudges(tc.judge),
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 2 {
				t.Fatalf("%d rows, want 2", len(rows))
			}
			for _, r := range rows {
				if r.CertifiedCorrect != tc.correct || r.CertifiedWrong != tc.wrong || r.Undecided != tc.undecided || r.SingleModel != tc.single {
					t.Errorf("n=%d: %+v", r.Validators, r)
				}
			}
		})
	}
}

// TestRunAccuracySplitPanel gives an even panel a tie on every claim, which
// the strict majority rule leaves undecided.
func TestRunAccuracySplitPanel(t *testing.T) {
	split := func(i int, _ float64, oracle JudgeFunc) (JudgeFunc, error) {
		return func(ctx context.Context, c claims.Claim) claims.Verdict {
			if i%2 == 0 {
				return oracle(ctx, c)
			}
			return oracle(ctx, c).Invert()
		}, nil
	}
	rows, err := RunAccuracy(context.Background(), AccuracyConfig{Claims: 100, Accuracies: []float64{0.5}, Validators: []int{4}, NewJudge: split})
	if err != nil {
		t.Fatal(err)
	}
	if r := rows[0]; r.Undecided != 1 || r.SingleModel != 0.5 {
		t.Errorf("row = %+v, want all undecided", r)
	}
}

func TestRunAccuracyMatchesBinomial(t *testing.T) {
	const claimsN = 4000
	rows, err := RunAccuracy(context.Background(), AccuracyConfig{
		Claims: claimsN, Accuracies: []float64{0.6, 0.8}, Validators: []int{1, 3, 5}, NewJudge: SimulatedJudges(7),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		// Four standard deviations of a proportion over claimsN claims.
		tol := 4 * math.Sqrt(r.Predicted*(1-r.Predicted)/claimsN)
		if math.Abs(r.CertifiedCorrect-r.Predicted) > tol {
			t.Errorf("p=%v n=%d: certified correct %.4f, predicted %.4f (tolerance %.4f)", r.Accuracy, r.Validators, r.CertifiedCorrect, r.Predicted, tol)
		}
		if r.Undecided != 0 || math.Abs(r.CertifiedCorrect+r.CertifiedWrong-1) > 1e-12 {
			t.Errorf("p=%v n=%d: odd panels of non-abstaining validators decide every claim: %+v", r.Accuracy, r.Validators, r)
		}
		stol := 4 * math.Sqrt(r.Accuracy*(1-r.Accuracy)/float64(claimsN*r.Validators))
		if math.Abs(r.SingleModel-r.Accuracy) > stol {
			t.Errorf("p=%v n=%d: single model %.4f (tolerance %.4f)", r.Accuracy, r.Validators, r.SingleModel, stol)
		}
	}
	again, err := RunAccuracy(context.Background(), AccuracyConfig{
		Claims: claimsN, Accuracies: []float64{0.6, 0.8}, Validators: []int{1, 3, 5}, NewJudge: SimulatedJudges(7),
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		if rows[i] != again[i] {
			t.Errorf("not deterministic: %+v then %+v", rows[i], again[i])
		}
	}
}

func TestRunAccuracyRejectsBadConfig(t *testing.T) {
	cases := []AccuracyConfig{
		{Claims: 0, Accuracies: []float64{0.7}, Validators: []int{3}, NewJudge: SimulatedJudges(1)},
		{Claims: 10, Accuracies: []float64{1.5}, Validators: []int{3}, NewJudge: SimulatedJudges(1)},
		{Claims: 10, Accuracies: []float64{math.NaN()}, Validators: []int{3}, NewJudge: SimulatedJudges(1)},
		{Claims: 10, Accuracies: []float64{0.7}, Validators: []int{0}, NewJudge: SimulatedJudges(1)},
		{Claims: 10, Accuracies: []float64{0.7}, Validators: []int{3}},
	}
	for i, cfg := range cases {
		if _, err := RunAccuracy(context.Background(), cfg); !errors.Is(err, ErrAccuracyConfig) {
			t.Errorf("case %d: err = %v, want ErrAccuracyConfig", i, err)
		}
	}
}
