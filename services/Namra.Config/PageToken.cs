using System.Buffers.Text;
using System.Globalization;
using System.Text;
using Namra.Hosting.Errors;

namespace Namra.Config;

/// <summary>Opaque page tokens for list calls (an offset, base64url-encoded, so clients do not build them).</summary>
internal static class PageToken
{
    private const string Prefix = "offset:";

    public static string Encode(int offset) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(Prefix + offset.ToString(CultureInfo.InvariantCulture)));

    public static int Decode(string token)
    {
        if (token.Length == 0)
        {
            return 0;
        }

        try
        {
            var text = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(token));
            if (text.StartsWith(Prefix, StringComparison.Ordinal)
                && int.TryParse(text.AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var offset))
            {
                return offset;
            }
        }
        catch (FormatException)
        {
            // Reported below like any other token we did not issue.
        }

        throw new InvalidArgumentException("page_token", "page_token was not issued by this service; pass the next_page_token of the previous page.");
    }
}
