package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/verity-network/verity/models"
)

// accuracyLevels and accuracyPanels are the configurations the experiment
// measures: individual validator accuracy times validators per claim.
var (
	accuracyLevels = []float64{0.6, 0.7, 0.8}
	accuracyPanels = []int{3, 5, 9}
)

func init() {
	register(&cli.Command{
		Name:  "accuracy",
		Usage: "measure how often a majority of independent validators certifies the right verdict",
		Description: `For individual validator accuracy 0.6, 0.7 and 0.8 and 3, 5 and 9 validators
per claim, judges --claims claims of known truth (half true, half false) with
independent seeded validators, decides every claim with the consensus tally
under a simple-majority count quorum (n/2+1 of n; ballots are not signed), and
prints the fraction of claims certified correctly, certified wrongly and left
undecided, a single validator's accuracy, and the binomial prediction
P(X > n/2) for X ~ Bin(n, p). Runs in memory, no network.`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "claims", Value: 10000, Usage: "claims per configuration"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the validators' errors"},
			&cli.BoolFlag{Name: "json", Usage: "print the rows as JSON"},
		},
		Action: runAccuracy,
	})
}

func runAccuracy(c *cli.Context) error {
	n := c.Int("claims")
	if n <= 0 {
		return exitCode(2, fmt.Errorf("--claims must be positive, got %d", n))
	}
	start := time.Now()
	rows, err := models.RunAccuracy(c.Context, models.AccuracyConfig{
		Claims:     n,
		Accuracies: accuracyLevels,
		Validators: accuracyPanels,
		NewJudge:   models.SimulatedJudges(c.Uint64("seed")),
	})
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	w := c.App.Writer
	if c.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	fmt.Fprintf(w, "%d claims per configuration (half true, half false), seed %d, simple majority (n/2+1 of n)\n\n", n, c.Uint64("seed"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "p\tn\tcertified correct\tcertified wrong\tundecided\tsingle model\tpredicted P(X>n/2)\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%.1f\t%d\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t\n",
			r.Accuracy, r.Validators, r.CertifiedCorrect, r.CertifiedWrong, r.Undecided, r.SingleModel, r.Predicted)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d configurations in %s\n", len(rows), elapsed.Round(time.Millisecond))
	return nil
}
