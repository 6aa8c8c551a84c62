using System.Security.Cryptography;
using Google.Protobuf;
using Namra.Contracts.V1;

namespace Namra.Contracts;

/// <summary>
/// The hash chain of the audit log (<see cref="AuditEntry"/>): each entry's hash is the SHA-256 of its protobuf encoding
/// with <c>hash</c> empty, and names the hash of the entry before it. The memory service links entries as it appends
/// them; <c>namra audit verify</c> checks them.
/// </summary>
public static class AuditChain
{
    /// <summary>The hash an entry must carry.</summary>
    public static string HashOf(AuditEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var copy = entry.Clone();
        copy.Hash = "";
        return Convert.ToHexStringLower(SHA256.HashData(copy.ToByteArray()));
    }

    /// <summary>Numbers <paramref name="entry"/> after <paramref name="previous"/> (none for the first) and chains it to it.</summary>
    public static void Link(AuditEntry entry, AuditEntry previous)
    {
        ArgumentNullException.ThrowIfNull(entry);
        entry.Sequence = (previous?.Sequence ?? 0) + 1;
        entry.PreviousHash = previous?.Hash ?? "";
        entry.Hash = HashOf(entry);
    }

    /// <summary>
    /// What is wrong with a run of entries read in order, from <paramref name="previous"/> on (none: from the first): an
    /// entry whose hash is not its own (edited), a gap in the numbering or a link to another hash (removed, inserted or
    /// reordered). Empty when the chain holds.
    /// </summary>
    public static IEnumerable<string> Problems(IEnumerable<AuditEntry> entries, AuditEntry previous = null)
    {
        ArgumentNullException.ThrowIfNull(entries);
        foreach (var entry in entries)
        {
            var expected = (previous?.Sequence ?? 0) + 1;
            if (entry.Sequence != expected)
            {
                yield return entry.Sequence > expected
                    ? $"entry {entry.Sequence}: follows entry {expected - 1}; {(entry.Sequence - expected == 1 ? $"entry {expected} is" : $"entries {expected} to {entry.Sequence - 1} are")} missing"
                    : $"entry {entry.Sequence}: out of order after entry {expected - 1}";
            }
            else if (entry.PreviousHash != (previous?.Hash ?? ""))
            {
                yield return $"entry {entry.Sequence}: names a previous hash that is not entry {expected - 1}'s (an entry before it was replaced)";
            }

            if (HashOf(entry) != entry.Hash)
            {
                yield return $"entry {entry.Sequence}: its content does not match its hash (it was edited)";
            }

            previous = entry;
        }
    }
}
