using System.Text.RegularExpressions;

namespace Namra.ToolExecutor.Tools.Shell;

/// <summary>
/// What the shell tool lets a model pass to an allowed program. An allowed program can do everything its flags
/// can, so flags known to run other programs or write where they are told are refused, programs whose arguments
/// are themselves programs (interpreters, <c>env</c>, <c>xargs</c>...) take no arguments, and paths stay inside the
/// working directory and the tool's <c>allowed_paths</c>; git's subcommands that run programs (<c>rebase --exec</c>,
/// <c>submodule foreach</c>, <c>difftool</c>...) or write its configuration are refused too. An operator who lists <c>argument_patterns</c> for a
/// program decides alone what it accepts: every argument must match one of them. The path check is lexical (a
/// symbolic link inside the folder can point out); the account and namespace the command runs in are the boundary.
/// </summary>
internal static class ArgumentPolicy
{
    // Programs that run what their arguments name or contain.
    private static readonly HashSet<string> Launchers = new(StringComparer.Ordinal)
    {
        "env", "xargs", "nice", "nohup", "timeout", "stdbuf", "watch", "flock", "time", "setsid", "chroot", "sudo", "su", "doas",
        "runuser", "setpriv", "unshare", "nsenter", "strace", "ltrace", "gdb", "busybox", "script", "parallel", "make", "ssh",
        "sh", "bash", "dash", "zsh", "ksh", "fish", "csh", "tcsh", "python", "python3", "perl", "ruby", "node", "php", "lua",
        "awk", "gawk", "mawk", "nawk", "sed", "ed", "vi", "vim", "nvim", "nano", "emacs", "less", "more", "man",
    };

    // Flags that run a program or write to a file of the caller's choosing. Words are matched whole ("-exec"), long
    // options whole or with "=value", and single letters inside a bundle of short options too ("-sSo" holds -o).
    private static readonly Dictionary<string, string[]> ExecutingFlags = new(StringComparer.Ordinal)
    {
        ["find"] = ["-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fprint0", "-fprintf", "-fls"],
        ["tar"] = ["--checkpoint-action", "--to-command", "--use-compress-program", "-I", "--info-script", "-F", "--new-volume-script", "--rmt-command", "--rsh-command"],
        ["git"] = ["-c", "--config-env", "--exec-path", "--upload-pack", "--receive-pack", "-u", "--template", "--output", "--ext-diff", "--textconv"],
        ["sort"] = ["-o", "--output", "--compress-program"],
        ["wget"] = ["-O", "--output-document", "-o", "--output-file", "-a", "--append-output", "-e", "--execute", "--use-askpass", "-P", "--directory-prefix"],
        ["curl"] = ["-o", "--output", "-O", "--remote-name", "--remote-name-all", "-K", "--config", "--output-dir", "-D", "--dump-header", "-c", "--cookie-jar", "--trace", "--trace-ascii", "--libcurl", "--stderr"],
        ["rsync"] = ["-e", "--rsh", "--rsync-path"],
        ["scp"] = ["-o", "-F", "-S"],
        ["sftp"] = ["-o", "-F", "-S"],
        ["zip"] = ["-T", "-TT", "--unzip-command"],
        ["tee"] = ["-a", "--append"],
    };

    /// <summary>Why the call may not run, or null.</summary>
    public static string? Problem(string command, IReadOnlyList<string> arguments, string workingDirectory,
        IReadOnlyList<string> allowedPaths, IReadOnlyList<string>? patterns)
    {
        for (var i = 0; i < arguments.Count; i++)
        {
            if (arguments[i].Contains('\0', StringComparison.Ordinal))
            {
                return $"Argument {i + 1} contains a NUL character, which a program's argument cannot hold.";
            }
        }

        var program = Path.GetFileName(command);
        if (patterns is not null)
        {
            var allowed = new List<Regex>();
            foreach (var pattern in patterns)
            {
                if (Compiled.GetOrAdd(pattern, p => Compile(p).Regex) is not { } regex)
                {
                    return $"The argument pattern {Quote(pattern)} for {command} cannot be used: {Compile(pattern).Problem}";
                }

                allowed.Add(regex);
            }

            for (var i = 0; i < arguments.Count; i++)
            {
                if (!allowed.Any(pattern => pattern.IsMatch(arguments[i])))
                {
                    return $"Argument {i + 1} ({Quote(arguments[i])}) matches none of the argument patterns allowed for {command}.";
                }
            }
        }
        else if (arguments.Count > 0 && Launchers.Contains(program))
        {
            return $"{program} runs the programs or code its arguments give it, so it runs here without arguments unless the tool's argument_patterns allow some for it.";
        }
        else if (RefusedArgument(program, arguments) is { } refused)
        {
            return refused;
        }

        for (var i = 0; i < arguments.Count; i++)
        {
            if (OutsidePath(arguments[i], workingDirectory, allowedPaths) is { } path)
            {
                return $"Argument {i + 1} names {Quote(path)}, outside the working directory{(allowedPaths.Count > 0 ? " and the tool's allowed_paths" : "")}.";
            }
        }

        return null;
    }

    // git's subcommands first, so that rebase's --exec is named as itself, not as an abbreviation of --exec-path.
    private static string? RefusedArgument(string program, IReadOnlyList<string> arguments) =>
        (program == "git" ? RefusedGitSubcommand(arguments) : null) ?? RefusedFlag(program, arguments);

    private static string? RefusedFlag(string program, IReadOnlyList<string> arguments)
    {
        if (ExecutingFlags.TryGetValue(program, out var flags))
        {
            for (var i = 0; i < arguments.Count; i++)
            {
                if (flags.FirstOrDefault(flag => Names(arguments[i], flag)) is { } flag)
                {
                    return Refusal(program, flag, i);
                }
            }
        }

        return null;
    }

    private static string Refusal(string program, string what, int index) =>
        $"{program}'s {what} runs a program or writes a file of the caller's choosing, so this tool refuses it (argument {index + 1}).";

    // git subcommands that run what they are given (rebase --exec, bisect run), the tools of the repository's
    // configuration (difftool, mergetool), or a whole shell script (filter-branch): refused whole, or with the flag
    // or word that does it. Setting configuration is refused too: core.pager, core.sshCommand or an alias starting
    // with "!" is a program the next git command runs.
    private static readonly Dictionary<string, GitSubcommand> GitSubcommands = new(StringComparer.Ordinal)
    {
        ["rebase"] = new(Flags: ["-x", "--exec"]),
        ["grep"] = new(Flags: ["-O", "--open-files-in-pager"]),
        ["archive"] = new(Flags: ["--remote", "--exec"]),
        ["submodule"] = new(Words: ["foreach"]),
        ["bisect"] = new(Words: ["run"]),
        ["difftool"] = new(Whole: true),
        ["mergetool"] = new(Whole: true),
        ["filter-branch"] = new(Whole: true),
        ["filter-repo"] = new(Whole: true),
        ["instaweb"] = new(Whole: true),
        ["send-email"] = new(Whole: true),
        ["daemon"] = new(Whole: true),
        ["web--browse"] = new(Whole: true),
        ["config"] = new(ReadOnlyForms: ["--get", "--get-all", "--get-regexp", "--list", "-l", "get", "list"]),
    };

    // git's options before the subcommand that take the next argument as their value (-C dir, -c name=value).
    private static readonly HashSet<string> GitOptionsWithAValue = new(StringComparer.Ordinal)
    {
        "-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env", "--super-prefix",
    };

    private sealed record GitSubcommand(string[]? Flags = null, string[]? Words = null, bool Whole = false, string[]? ReadOnlyForms = null);

    private static string? RefusedGitSubcommand(IReadOnlyList<string> arguments)
    {
        var at = GitSubcommandIndex(arguments);
        if (at < 0 || !GitSubcommands.TryGetValue(arguments[at], out var subcommand))
        {
            return null;
        }

        var name = arguments[at];
        if (subcommand.Whole)
        {
            return Refusal("git", name, at);
        }

        if (subcommand.ReadOnlyForms is { } reads && !arguments.Skip(at + 1).Any(reads.Contains))
        {
            return Refusal("git", $"{name} (other than {string.Join(", ", reads)})", at);
        }

        for (var i = at + 1; i < arguments.Count; i++)
        {
            if (subcommand.Flags?.FirstOrDefault(flag => Names(arguments[i], flag)) is { } flag)
            {
                return Refusal("git", $"{name} {flag}", i);
            }

            if (subcommand.Words?.FirstOrDefault(word => arguments[i] == word) is { } word)
            {
                return Refusal("git", $"{name} {word}", i);
            }
        }

        return null;
    }

    private static int GitSubcommandIndex(IReadOnlyList<string> arguments)
    {
        for (var i = 0; i < arguments.Count; i++)
        {
            if (!arguments[i].StartsWith('-'))
            {
                return i;
            }

            if (GitOptionsWithAValue.Contains(arguments[i]))
            {
                i++;
            }
        }

        return -1;
    }

    // A non-backtracking regex takes long to build: each pattern once, for the first few hundred an operator writes.
    private static readonly Hosting.BoundedCache Compiled = new(256);

    private static (Regex? Regex, string Problem) Compile(string pattern)
    {
        try
        {
            // Linear-time matching: a pattern cannot be made to backtrack by an argument.
            return (new Regex($"^(?:{pattern})$", RegexOptions.NonBacktracking | RegexOptions.CultureInvariant), "");
        }
        catch (Exception exception) when (exception is ArgumentException or NotSupportedException)
        {
            return (null, exception.Message);
        }
    }

    private static bool Names(string argument, string flag)
    {
        if (flag.StartsWith("--", StringComparison.Ordinal) || flag.Length > 2)
        {
            var name = argument.Split('=', 2)[0];
            return name == flag
                || (flag.StartsWith("--", StringComparison.Ordinal) && name.Length > 3 && flag.StartsWith(name, StringComparison.Ordinal)); // GNU takes unambiguous prefixes
        }

        // A short option, alone, with its value attached, or inside a bundle ("-xvzf", "-sSo").
        return argument.Length >= 2 && argument[0] == '-' && argument[1] != '-' && argument.AsSpan(1).Contains(flag[1]);
    }

    // The path an argument names outside the allowed folders: the argument itself, or the value of "--opt=value" or "if=value".
    private static string? OutsidePath(string argument, string workingDirectory, IReadOnlyList<string> allowedPaths)
    {
        var equals = argument.IndexOf('=', StringComparison.Ordinal);
        foreach (var candidate in equals > 0 ? [argument, argument[(equals + 1)..]] : new[] { argument })
        {
            var named = candidate.StartsWith('/') || candidate.StartsWith('~') || candidate == ".." || candidate.StartsWith("../", StringComparison.Ordinal)
                || candidate.Contains("/../", StringComparison.Ordinal) || candidate.EndsWith("/..", StringComparison.Ordinal);
            if (!named)
            {
                continue;
            }

            if (candidate.StartsWith('~'))
            {
                return candidate;
            }

            var full = Path.GetFullPath(candidate, workingDirectory);
            if (!Inside(full, workingDirectory) && !allowedPaths.Any(root => Inside(full, root)))
            {
                return full;
            }
        }

        return null;
    }

    private static bool Inside(string path, string root)
    {
        root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        return root == "/" || path == root || path.StartsWith(root + "/", StringComparison.Ordinal);
    }

    private static string Quote(string text) => text.Length > 80 ? $"`{text[..80]}…`" : $"`{text}`";
}
