using System.Text;
using Google.Rpc;
using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.LlmGateway.Providers;

namespace Namra.LlmGateway.Pricing;

/// <summary>
/// A model call's worst case, reserved against the caller's budget before the provider is called. Input is bounded,
/// not estimated: a provider's tokenizer makes at most one token of each UTF-8 byte it reads (a byte-level BPE token
/// covers at least one byte), so the bytes of everything sent, plus the framing a provider adds around messages,
/// blocks, tools and images, bound what any provider can count. Output is bounded by <c>max_tokens</c>. Priced at the
/// highest rate of every model the call may be served by (the model and its fallbacks), so no answer can cost more.
/// </summary>
internal static class CallReservations
{
    // Framing a provider may add, in tokens, beyond the bytes of the content: role markers and separators for each
    // message and block (chat templates use under ten; these cover even the wire format's own field names, as a
    // provider counting every byte of the JSON it received would), a tool's description wrapper, the request's own
    // fields, and the instructions a provider prepends when tools are offered (Anthropic documents about 350 tokens).
    private const long PerMessage = 32;
    private const long PerBlock = 48;
    private const long PerTool = 64;
    private const long ToolInstructions = 1_024;
    private const long Request = 256;

    // An image is billed by its pixels, not its bytes: providers scale images to fit, and bill at most about 1,600
    // tokens (Anthropic) or 1,105 (OpenAI's largest high-detail tiling) for one.
    private const long PerImage = 2_048;

    /// <summary>What models send when a definition gives no <c>max_tokens</c>.</summary>
    public const int DefaultMaxTokens = 4096;

    /// <summary>The most input tokens any provider can count for this request.</summary>
    public static long InputBound(ChatRequest chat)
    {
        ArgumentNullException.ThrowIfNull(chat);
        var total = Request + Bytes(chat.SystemPrompt) + Bytes(chat.Llm.Model);
        for (var i = 0; i < chat.Llm.StopSequences.Count; i++)
        {
            total += Bytes(chat.Llm.StopSequences[i]);
        }

        // Indexed loops: this runs before every model call, and the lists' enumerators would be allocated.
        for (var m = 0; m < chat.Messages.Count; m++)
        {
            var content = chat.Messages[m].Content;
            total += PerMessage;
            for (var b = 0; b < content.Count; b++)
            {
                var block = content[b];
                total += PerBlock + block.BlockCase switch
                {
                    ContentBlock.BlockOneofCase.Text => Bytes(block.Text),
                    ContentBlock.BlockOneofCase.ToolCall => Bytes(block.ToolCall.Id) + Bytes(block.ToolCall.Name) + Bytes(block.ToolCall.ArgumentsJson),
                    ContentBlock.BlockOneofCase.ToolResult => Bytes(block.ToolResult.ToolCallId) + Bytes(block.ToolResult.Content),
                    ContentBlock.BlockOneofCase.Thinking => Bytes(block.Thinking.Text) + Bytes(block.Thinking.Signature),
                    ContentBlock.BlockOneofCase.Image => PerImage,
                    _ => 0,
                };
            }
        }

        for (var t = 0; t < chat.Tools.Count; t++)
        {
            var tool = chat.Tools[t];
            total += PerTool + Bytes(tool.Name) + Bytes(tool.Description) + Bytes(tool.InputSchemaJson);
        }

        return chat.Tools.Count > 0 ? total + ToolInstructions : total;
    }

    /// <summary>
    /// Reserves the call's worst case within <paramref name="budget"/>, or refuses: RESOURCE_EXHAUSTED with a
    /// <c>QuotaFailure</c> naming the budget, or FAILED_PRECONDITION for a cost limit on a model without a price.
    /// </summary>
    public static CallReservation Reserve(ChatRequest chat, PricingTable pricing, CallBudget? budget)
    {
        ArgumentNullException.ThrowIfNull(chat);
        ArgumentNullException.ThrowIfNull(pricing);
        var input = InputBound(chat);
        var output = chat.Llm.MaxTokens > 0 ? chat.Llm.MaxTokens : DefaultMaxTokens;
        var reservation = new CallReservation { Tokens = input + output };

        // The worst cost over the model and its fallbacks; the first of them without a price makes it unknown.
        string? unpriced = null;
        Cost? worst = null;
        for (var i = -1; i < chat.Llm.FallbackModels.Count && unpriced is null; i++)
        {
            var model = i < 0 ? chat.Llm.Model : chat.Llm.FallbackModels[i];
            if (pricing.PriceOf(chat.Llm, model) is not { } price)
            {
                unpriced = model;
            }
            else if (price.WorstCostOf(input, output) is var cost && (worst is null || cost.TotalUsd > worst.TotalUsd))
            {
                worst = cost;
            }
        }

        reservation.Cost = unpriced is null ? worst : null;
        Check(reservation, budget, chat.Llm.Provider, unpriced, "The next model call", input, output);
        return reservation;
    }

    /// <summary>
    /// Reserves an embedding call's worst case within <paramref name="budget"/>, or refuses as <see cref="Reserve"/> does:
    /// the bytes of the texts and the model's name, with the framing of each input and of the request, at the model's price.
    /// An embedding writes no tokens.
    /// </summary>
    public static CallReservation ReserveEmbedding(LlmConfig llm, IReadOnlyList<string> inputs, PricingTable pricing, CallBudget? budget)
    {
        ArgumentNullException.ThrowIfNull(llm);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(pricing);
        var input = Request + Bytes(llm.Model);
        for (var i = 0; i < inputs.Count; i++)
        {
            input += PerMessage + Bytes(inputs[i]);
        }

        var price = pricing.PriceOf(llm, llm.Model);
        var reservation = new CallReservation { Tokens = input, Cost = price?.WorstCostOf(input, 0) };
        Check(reservation, budget, llm.Provider, price is null ? llm.Model : null, "The embedding call", input, output: 0);
        return reservation;
    }

    /// <summary>
    /// Refuses another request of a call whose earlier requests of unknown outcome were charged
    /// <paramref name="chargedTokens"/> and <paramref name="chargedUsd"/>, when its worst case does not fit what is left.
    /// </summary>
    public static void CheckAnother(CallReservation reservation, CallBudget budget, LlmProvider provider, long chargedTokens, double chargedUsd)
    {
        if (chargedTokens == 0 && chargedUsd == 0)
        {
            return;
        }

        var left = new CallBudget();
        if (budget.HasMaxTokens)
        {
            left.MaxTokens = budget.MaxTokens - chargedTokens;
        }

        if (budget.HasMaxCostUsd)
        {
            left.MaxCostUsd = budget.MaxCostUsd - chargedUsd;
        }

        Check(reservation, left, provider, unpriced: null,
            $"A request of unknown outcome was charged {chargedTokens:N0} tokens{(chargedUsd > 0 ? $" (${chargedUsd:0.######})" : "")}, so the call was not sent again: another request", input: 0, output: 0);
    }

    // Refuses a reservation that does not fit the budget; a cost limit needs a price for every model the call may use.
    private static void Check(CallReservation reservation, CallBudget? budget, LlmProvider provider, string? unpriced, string call, long input, long output)
    {
        if (budget is null)
        {
            return;
        }

        if (budget.HasMaxTokens && reservation.Tokens > budget.MaxTokens)
        {
            var bound = output > 0 ? $" ({input:N0} of input at most, {output:N0} of output)" : "";
            throw Exhausted("execution.budget.max_tokens", $"{call} could use up to {reservation.Tokens:N0} tokens{bound}; the run's budget has {budget.MaxTokens:N0} left.");
        }

        if (budget.HasMaxCostUsd)
        {
            if (unpriced is not null)
            {
                throw new NamraException(StatusCode.FailedPrecondition,
                    $"The gateway has no price for {LlmGatewayGrpcService.Name(provider)} model '{unpriced}', so a cost budget (execution.budget.max_cost_usd) cannot be kept: give it a price (the agent's llm.pricing for the models it chats with, the gateway's Namra:LlmGateway:Models for any).",
                    [new BadRequest { FieldViolations = { new BadRequest.Types.FieldViolation { Field = "execution.budget.max_cost_usd", Description = $"no price for model '{unpriced}'" } } }]);
            }

            if (reservation.Cost is { } highest && highest.TotalUsd > budget.MaxCostUsd)
            {
                throw Exhausted("execution.budget.max_cost_usd", $"{call} could cost up to ${highest.TotalUsd:0.######}; the run's budget has ${budget.MaxCostUsd:0.######} left.");
            }
        }
    }

    private static long Bytes(string text) => Encoding.UTF8.GetByteCount(text);

    private static NamraException Exhausted(string budget, string message) =>
        new(StatusCode.ResourceExhausted, message, [new QuotaFailure { Violations = { new QuotaFailure.Types.Violation { Subject = budget, Description = message } } }]);
}
