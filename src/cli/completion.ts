import { Argument, Command } from 'commander'
import { out, type CliDeps } from './context.js'

export const SHELLS = ['bash', 'zsh', 'fish'] as const
export type Shell = (typeof SHELLS)[number]

/** `proxy completion SHELL`: a completion script made from the command tree this binary really has. */
export function completionCommand(deps: CliDeps): Command {
  return new Command('completion')
    .description('print a shell completion script (commands, subcommands, options)')
    .addArgument(new Argument('<shell>', 'the shell').choices(SHELLS as readonly string[]))
    .addHelpText(
      'after',
      '\nInstall:\n  proxy completion bash > ~/.local/share/bash-completion/completions/proxy\n  proxy completion zsh > ~/.zfunc/_proxy     # a directory on $fpath, before compinit\n  proxy completion fish > ~/.config/fish/completions/proxy.fish',
    )
    .action(async (shell: Shell, _opts: unknown, cmd: Command) => {
      const { completionScript } = await import('./completion-script.js')
      let root = cmd
      while (root.parent) root = root.parent
      out(deps, completionScript(root, shell))
    })
}
