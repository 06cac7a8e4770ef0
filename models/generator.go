package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Generator answers a prompt with an output for the network to verify.
type Generator interface {
	Generate(ctx context.Context, prompt string) (string, error)
	Name() string
}

// ErrEmptyPrompt is returned by a generator given a blank prompt.
var ErrEmptyPrompt = errors.New("models: empty prompt")

// ErrEmptyAnswer is returned when a model answers with nothing.
var ErrEmptyAnswer = errors.New("models: model returned an empty answer")

// GeneratorSystemPrompt is the system message of every ChatGenerator
// request. Short declarative sentences, one fact each, decompose into claims
// one to one.
const GeneratorSystemPrompt = `Answer the question in short declarative sentences, one fact per sentence.
State only facts you are confident of. Do not use lists, headings or Markdown.
Do not repeat the question and do not add a preamble.`

// generatorMaxTokens bounds a generated answer.
const generatorMaxTokens = 512

// ChatGenerator answers prompts with a chat model, using
// GeneratorSystemPrompt at temperature 0.
type ChatGenerator struct {
	client *ChatClient
}

var _ Generator = (*ChatGenerator)(nil)

// NewChatGeneratorFromClient wraps client.
func NewChatGeneratorFromClient(client *ChatClient) *ChatGenerator {
	return &ChatGenerator{client: client}
}

// Name is "openai:" followed by the model name.
func (g *ChatGenerator) Name() string { return "openai:" + g.client.Model() }

// Generate returns the model's answer to prompt, trimmed.
func (g *ChatGenerator) Generate(ctx context.Context, prompt string) (string, error) {
	if strings.TrimSpace(prompt) == "" {
		return "", ErrEmptyPrompt
	}
	out, err := g.client.Complete(ctx, []Message{
		{Role: "system", Content: GeneratorSystemPrompt},
		{Role: "user", Content: prompt},
	}, CompleteOptions{Temperature: 0, MaxTokens: generatorMaxTokens})
	if err != nil {
		return "", fmt.Errorf("generate: %w", err)
	}
	out = strings.TrimSpace(out)
	if out == "" {
		return "", ErrEmptyAnswer
	}
	return out, nil
}
