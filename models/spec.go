package models

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/verity-network/verity/claims"
)

// Kinds of Spec.
const (
	// KindSimulated is the SimulatedGenerator over a knowledge base.
	KindSimulated = "simulated"
	// KindOpenAI is a model behind an OpenAI-compatible endpoint.
	KindOpenAI = "openai"
	// KindModel is accepted as a synonym of KindOpenAI (the verifier
	// backend of a node config is called "model").
	KindModel = "model"
)

// Spec is the configuration of a generator, a model verifier or a model
// decomposer, as read from a node config.
type Spec struct {
	// Kind is KindSimulated or KindOpenAI (KindModel is a synonym of
	// KindOpenAI). Verifiers and decomposers need a model kind.
	Kind string
	// BaseURL, Model, APIKeyEnv, Timeout, MaxRetries and MaxConcurrency
	// configure the ChatClient of a model kind; see ChatConfig.
	BaseURL        string
	Model          string
	APIKeyEnv      string
	Timeout        time.Duration
	MaxRetries     int
	MaxConcurrency int
	// HallucinationRate, Seed and KnowledgeBase configure the simulated
	// generator: the share of sentences replaced by a wrong fact, the seed
	// of those choices, and the knowledge base file (empty means the
	// sample knowledge base shipped with claims).
	HallucinationRate float64
	Seed              uint64
	KnowledgeBase     string
}

// ChatConfig is the client part of s.
func (s Spec) ChatConfig() ChatConfig {
	return ChatConfig{
		BaseURL:        s.BaseURL,
		Model:          s.Model,
		APIKeyEnv:      s.APIKeyEnv,
		Timeout:        s.Timeout,
		MaxRetries:     s.MaxRetries,
		MaxConcurrency: s.MaxConcurrency,
	}
}

func (s Spec) kind() string { return strings.ToLower(strings.TrimSpace(s.Kind)) }

func (s Spec) isModel() bool { k := s.kind(); return k == KindOpenAI || k == KindModel }

// NewGenerator builds the generator s describes. opts adjust the client of
// a model kind.
func NewGenerator(s Spec, opts ...ClientOption) (Generator, error) {
	switch {
	case s.kind() == KindSimulated:
		st, err := s.statements()
		if err != nil {
			return nil, err
		}
		return NewSimulatedGenerator(st, s.HallucinationRate, s.Seed)
	case s.isModel():
		c, err := NewChatClient(s.ChatConfig(), opts...)
		if err != nil {
			return nil, fmt.Errorf("generator: %w", err)
		}
		return NewChatGeneratorFromClient(c), nil
	}
	return nil, fmt.Errorf("%w: generator kind %q, want %q or %q", ErrConfig, s.Kind, KindSimulated, KindOpenAI)
}

// NewModelVerifier builds a model verifier from a model-kind spec.
func NewModelVerifier(s Spec, opts ...ClientOption) (*ModelVerifier, error) {
	if !s.isModel() {
		return nil, fmt.Errorf("%w: verifier kind %q, want %q", ErrConfig, s.Kind, KindOpenAI)
	}
	c, err := NewChatClient(s.ChatConfig(), opts...)
	if err != nil {
		// The caller says it is the verifier's configuration.
		return nil, err
	}
	return NewModelVerifierFromClient(c), nil
}

// NewModelDecomposer builds a model decomposer from a model-kind spec.
func NewModelDecomposer(s Spec, opts ...ClientOption) (*ModelDecomposer, error) {
	if !s.isModel() {
		return nil, fmt.Errorf("%w: decomposer kind %q, want %q", ErrConfig, s.Kind, KindOpenAI)
	}
	c, err := NewChatClient(s.ChatConfig(), opts...)
	if err != nil {
		return nil, fmt.Errorf("decomposer: %w", err)
	}
	return NewModelDecomposerFromClient(c), nil
}

// statements are the knowledge base statements of a simulated spec.
func (s Spec) statements() ([]Statement, error) {
	if s.KnowledgeBase == "" {
		return SampleStatements()
	}
	data, err := os.ReadFile(s.KnowledgeBase)
	if err != nil {
		return nil, fmt.Errorf("generator: %w", err)
	}
	st, err := ParseStatements(string(data))
	if err != nil {
		return nil, fmt.Errorf("generator: knowledge base %s: %w", s.KnowledgeBase, err)
	}
	return st, nil
}

// SampleStatements are the statements of claims.SampleKnowledgeBase.
func SampleStatements() ([]Statement, error) {
	return ParseStatements(claims.SampleKnowledgeBaseText())
}

// ParseStatements lists the statements of a knowledge base file, in file
// order and with their original text. The file is first checked with
// claims.ParseKnowledgeBase, so it accepts exactly what validators accept;
// claims.KnowledgeBase keeps only normalised statements, which is why the
// lines are read again here.
func ParseStatements(text string) ([]Statement, error) {
	if _, err := claims.ParseKnowledgeBase(strings.NewReader(text)); err != nil {
		return nil, err
	}
	var out []Statement
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		label, stmt, _ := strings.Cut(line, ":")
		out = append(out, Statement{
			Text: strings.Join(strings.Fields(stmt), " "),
			True: strings.EqualFold(strings.TrimSpace(label), "true"),
		})
	}
	return out, nil
}
