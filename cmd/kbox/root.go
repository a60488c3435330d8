package main

import (
	"io"

	"github.com/spf13/cobra"
)

// globals are the settings every client command shares.
type globals struct {
	bootstrap string
	format    string
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "kbox",
		Short:         "A Kafka-compatible event-streaming platform in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newUpCommand(),
		newVersionCommand(),
		newTopicCommand(g),
		newProduceCommand(g),
		newConsumeCommand(g),
		newGroupCommand(g),
		newClusterCommand(),
	)
	return root
}
