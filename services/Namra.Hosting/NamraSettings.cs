using System.Diagnostics.CodeAnalysis;
using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Namra.Hosting;

/// <summary>
/// A service's settings section: its options checked at start by their source-generated validator, and the name of
/// the section remembered, so a host that refuses to start names the section at fault (<see cref="NamraStartup"/>).
/// The caller binds the section (<c>.Bind(configuration.GetSection(name))</c>), where the configuration binder's
/// source generator sees the options' concrete type.
/// </summary>
public static class NamraSettings
{
    private static readonly ConcurrentDictionary<Type, string> Sections = new();

    /// <summary>Adds <typeparamref name="TOptions"/> validated by <typeparamref name="TValidator"/> on start.</summary>
    public static OptionsBuilder<TOptions> AddNamraSettings<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] TOptions, [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TValidator>(this IServiceCollection services, string section)
        where TOptions : class
        where TValidator : class, IValidateOptions<TOptions>
    {
        ArgumentNullException.ThrowIfNull(services);
        Sections[typeof(TOptions)] = section;
        services.AddSingleton<IValidateOptions<TOptions>, TValidator>();
        return services.AddOptions<TOptions>().ValidateOnStart();
    }

    /// <summary>The section <paramref name="options"/> are bound from, when added by <see cref="AddNamraSettings"/>.</summary>
    public static string? SectionOf(Type options) => Sections.GetValueOrDefault(options);
}
